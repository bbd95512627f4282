//! `image_loading`: bytes → RGBA8, with limits checked from the header before any pixel is decoded.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbaImage};

use crate::error::LoadError;

/// Limits applied while loading. Defaults: 50 MiB of input, 8192 pixels per side,
/// 40 megapixels in all, at least 16 pixels per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    pub min_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 50 * 1024 * 1024,
            max_width: 8192,
            max_height: 8192,
            max_pixels: 40_000_000,
            min_side: 16,
        }
    }
}

impl ImageLimits {
    /// Bytes the decoder may allocate: the largest allowed image at 16 bits per channel and
    /// four channels, plus slack for the decoder's own buffers.
    fn max_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(8)
            .saturating_add(64 * 1024 * 1024)
    }
}

/// A decoded image, normalised to RGBA8 with its EXIF orientation applied.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub rgba: RgbaImage,
    pub format: ImageFormat,
    /// Whether the source had an alpha channel at all (it may still be fully opaque).
    pub source_has_alpha: bool,
}

/// Decodes PNG, JPEG or WebP bytes. Grayscale, palette, 16-bit and CMYK inputs are normalised
/// to RGBA8. Size limits are checked from the header before decoding, so a decompression bomb is
/// refused without allocating it.
pub fn load_image(bytes: &[u8], limits: &ImageLimits) -> Result<LoadedImage, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(LoadError::TooManyBytes {
            size,
            limit: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| LoadError::UnsupportedFormat {
        detail: "the data does not start with a known image signature".into(),
    })?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(LoadError::UnsupportedFormat {
            detail: format!("{format:?}"),
        });
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc());
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let source_has_alpha = decoder.color_type().has_alpha();
    // A missing or malformed EXIF block is not worth refusing the image for.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);

    let mut image = DynamicImage::from_decoder(decoder).map_err(map_decode_error)?;
    image.apply_orientation(orientation);
    Ok(LoadedImage {
        rgba: image.into_rgba8(),
        format,
        source_has_alpha,
    })
}

fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), LoadError> {
    if width > limits.max_width || height > limits.max_height {
        return Err(LoadError::DimensionsTooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(LoadError::TooManyPixels {
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    if width < limits.min_side || height < limits.min_side {
        return Err(LoadError::TooSmall {
            width,
            height,
            min_side: limits.min_side,
        });
    }
    Ok(())
}

fn map_decode_error(err: ImageError) -> LoadError {
    match err {
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            LoadError::Truncated {
                detail: io.to_string(),
            }
        }
        ImageError::Unsupported(e) => LoadError::UnsupportedFormat {
            detail: e.to_string(),
        },
        ImageError::Limits(e) => LoadError::Corrupt {
            detail: format!("decoder memory limit reached: {e}"),
        },
        other => {
            let detail = other.to_string();
            if looks_truncated(&detail) {
                LoadError::Truncated { detail }
            } else {
                LoadError::Corrupt { detail }
            }
        }
    }
}

/// The decoders report running out of data in their own words; these are the phrasings of
/// png, zune-jpeg and image-webp.
fn looks_truncated(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "end of file",
        "eof",
        "unexpected end",
        "no more bytes",
        "truncated",
        "not enough",
    ]
    .iter()
    .any(|p| d.contains(p))
}
