//! The images around Hunyuan3D-Paint's two models, prepared and finished as hy3dgen 2.0.2 does
//! with PIL and numpy: 8-bit images between the steps, bicubic resizes (Pillow's filter: Catmull-
//! Rom, its support widened when shrinking; RGBA resized premultiplied), the delight model's
//! eroded alpha and white background, its colour correction and compositing.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use image::imageops::{FilterType, resize};
use image::{Rgb32FImage, RgbImage, Rgba32FImage};

use crate::diffusion::colour::recorrect;
use crate::image::PreprocessedImage;
use crate::texture::camera::PaintView;
use crate::texture::raster::Rasterizer;
use crate::texture::render::{PaintMesh, to_rgb8};

/// Bicubic resize of an 8-bit RGB image (PIL's `Image.resize` default).
pub fn resize_rgb(img: &RgbImage, size: usize) -> RgbImage {
    if img.width() as usize == size && img.height() as usize == size {
        return img.clone();
    }
    let f = Rgb32FImage::from_fn(img.width(), img.height(), |x, y| {
        image::Rgb(img.get_pixel(x, y).0.map(f32::from))
    });
    let r = resize(&f, size as u32, size as u32, FilterType::CatmullRom);
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        image::Rgb(
            r.get_pixel(x, y)
                .0
                .map(|v| v.round().clamp(0.0, 255.0) as u8),
        )
    })
}

/// `[1, 3, H, W]` values `v / 255` of an 8-bit image.
pub fn to_tensor<B: Backend>(img: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = vec![0f32; 3 * w * h];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            v[c * w * h + i] = f32::from(p.0[c]) / 255.0;
        }
    }
    Tensor::from_data(TensorData::new(v, [1, 3, h, w]), device)
}

/// Row `row` of `[N, 3, H, W]` values in [0, 1] as an 8-bit image, rounded (diffusers'
/// `numpy_to_pil`).
pub fn from_tensor_row(values: &[f32], row: usize, size: usize) -> RgbImage {
    let plane = size * size;
    let base = row * 3 * plane;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (values[base + c * plane + i] * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

/// The delight model's input for one image, and what its output is corrected against.
#[derive(Debug, Clone)]
pub struct DelightInput {
    /// RGB at the model's size, white where the eroded alpha is 0.
    pub rgb: RgbImage,
    /// The eroded alpha, `a / 255`.
    pub alpha: Vec<f64>,
}

/// `Light_Shadow_Remover.__call__`'s preparation: the image with its mask as alpha, resized to
/// `size` (premultiplied, as Pillow resizes RGBA), alpha eroded by a 3×3 square (OpenCV's
/// `erode`: pixels outside the image do not count), RGB set to white where alpha is 0.
pub fn delight_input(image: &PreprocessedImage, size: usize) -> DelightInput {
    let s = image.size as u32;
    let rgba = Rgba32FImage::from_fn(s, s, |x, y| {
        let i = (y * s + x) as usize;
        let a = f32::from(image.mask[i]) / 255.0;
        let p = &image.rgb[i * 3..i * 3 + 3];
        // Premultiplied, in [0, 1] (the resize clamps float images to that range).
        image::Rgba([
            f32::from(p[0]) / 255.0 * a,
            f32::from(p[1]) / 255.0 * a,
            f32::from(p[2]) / 255.0 * a,
            a,
        ])
    });
    let r = if s as usize == size {
        rgba
    } else {
        resize(&rgba, size as u32, size as u32, FilterType::CatmullRom)
    };
    let u8_of = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    let alpha8: Vec<u8> = r.pixels().map(|p| u8_of(p.0[3])).collect();
    let eroded: Vec<u8> = (0..size * size)
        .map(|i| {
            let (x, y) = (i % size, i / size);
            let mut m = u8::MAX;
            for yy in y.saturating_sub(1)..=(y + 1).min(size - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(size - 1) {
                    m = m.min(alpha8[yy * size + xx]);
                }
            }
            m
        })
        .collect();
    let rgb = RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        if eroded[i] == 0 {
            return image::Rgb([255; 3]);
        }
        let p = r.get_pixel(x, y).0;
        image::Rgb([0, 1, 2].map(|c| if p[3] > 0.0 { u8_of(p[c] / p[3]) } else { 255 }))
    });
    DelightInput {
        rgb,
        alpha: eroded.iter().map(|&a| f64::from(a) / 255.0).collect(),
    }
}

/// The delight model's 8-bit output corrected towards its input ([`recorrect`]) and composited
/// over white by the eroded alpha. Rounded to 8 bits: the reference truncates (`astype(np.uint8)`),
/// which darkens every channel by half a level on average and turns 200/255 · 255 into 199.
pub fn finish_delight(output: &RgbImage, input: &DelightInput) -> RgbImage {
    let to_f64 = |img: &RgbImage| -> Vec<[f64; 3]> {
        img.pixels()
            .map(|p| p.0.map(|v| f64::from(v) / 255.0))
            .collect()
    };
    let corrected = recorrect(&to_f64(output), &to_f64(&input.rgb), &input.alpha);
    let size = output.width();
    RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        let a = input.alpha[i];
        image::Rgb(
            corrected[i].map(|c| ((c * a + (1.0 - a)) * 255.0).round().clamp(0.0, 255.0) as u8),
        )
    })
}

/// The normal and position maps of `views`, rendered at `render` pixels and resized to `size`
/// as the reference hands them to the multiview model.
pub fn control_maps(
    mesh: &PaintMesh,
    rasterizer: &dyn Rasterizer,
    views: &[PaintView],
    render: usize,
    size: usize,
) -> (Vec<RgbImage>, Vec<RgbImage>) {
    views
        .iter()
        .map(|v| {
            let n = mesh.render_normal(rasterizer, v, render, render);
            let p = mesh.render_position(rasterizer, v, render, render);
            (
                resize_rgb(&to_rgb8(&n, render, render), size),
                resize_rgb(&to_rgb8(&p, render, render), size),
            )
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orfeas_vocab::{Segmentation, SegmentationMethod};

    fn preprocessed(size: usize) -> PreprocessedImage {
        let mut rgb = vec![255u8; size * size * 3];
        let mut mask = vec![0u8; size * size];
        for y in size / 4..3 * size / 4 {
            for x in size / 4..3 * size / 4 {
                let i = y * size + x;
                mask[i] = 255;
                rgb[i * 3..i * 3 + 3].copy_from_slice(&[200, 40, 10]);
            }
        }
        PreprocessedImage {
            size,
            rgb,
            mask,
            segmentation: Segmentation {
                method: SegmentationMethod::Alpha,
                mask_share: 0.25,
            },
        }
    }

    #[test]
    fn the_delight_input_erodes_the_alpha_and_whitens_the_background() {
        let input = delight_input(&preprocessed(16), 16);
        // The 8×8 square shrinks by one pixel on each side.
        let inside = input.alpha.iter().filter(|&&a| a == 1.0).count();
        assert_eq!(inside, 36);
        assert_eq!(
            input.rgb.get_pixel(4, 4).0,
            [255; 3],
            "eroded edge is white"
        );
        assert_eq!(input.rgb.get_pixel(8, 8).0, [200, 40, 10]);
        // Resizing keeps the object's colour (premultiplied: no white halo inside).
        let big = delight_input(&preprocessed(16), 32);
        assert_eq!(big.rgb.get_pixel(16, 16).0, [200, 40, 10]);
    }

    #[test]
    fn an_unchanged_output_comes_back_composited_over_white() {
        let input = delight_input(&preprocessed(16), 16);
        let out = finish_delight(&input.rgb, &input);
        assert_eq!(out.get_pixel(8, 8).0, [200, 40, 10]);
        assert_eq!(out.get_pixel(0, 0).0, [255; 3]);
    }
}
