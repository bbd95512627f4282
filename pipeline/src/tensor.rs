//! Conversion of preprocessed images into the batched network input tensor `[B, 3, S, S]`.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::image::PreprocessedImage;

/// CPU backend used when no GPU is configured.
pub type CpuBackend = burn::backend::NdArray<f32>;

/// GPU backend (feature `cuda`).
#[cfg(feature = "cuda")]
pub type GpuBackend = burn_cuda::Cuda<f32, i32>;

/// Stacks images of equal size into `[B, 3, S, S]` with values in [-1, 1]. Panics only on an
/// empty batch or mixed sizes, which callers rule out.
pub fn batch_tensor<B: Backend>(images: &[&PreprocessedImage], device: &B::Device) -> Tensor<B, 4> {
    assert!(!images.is_empty(), "empty batch");
    let s = images[0].size;
    assert!(
        images.iter().all(|i| i.size == s),
        "mixed image sizes in one batch"
    );
    let mut values = Vec::with_capacity(images.len() * 3 * s * s);
    for img in images {
        values.extend(img.to_chw());
    }
    Tensor::from_data(TensorData::new(values, [images.len(), 3, s, s]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Segmentation, SegmentationMethod};

    #[test]
    fn values_and_layout() {
        let s = 4;
        let mut rgb = vec![255u8; s * s * 3];
        rgb[0] = 0; // pixel (0,0) red channel
        rgb[5 * 3 + 2] = 51; // pixel (1,1) blue channel
        let img = PreprocessedImage {
            size: s,
            rgb,
            mask: vec![255; s * s],
            segmentation: Segmentation {
                method: SegmentationMethod::Alpha,
                mask_share: 1.0,
            },
        };
        let t = batch_tensor::<CpuBackend>(&[&img, &img], &Default::default());
        assert_eq!(t.dims(), [2, 3, 4, 4]);
        let v: Vec<f32> = t.into_data().to_vec().expect("f32 data");
        assert_eq!(v[0], -1.0);
        assert!((v[2 * 16 + 5] - (51.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-6);
        assert_eq!(v[1], 1.0);
        assert_eq!(v[48], -1.0);
    }
}
