//! Images: loading with limits, cv2-compatible resizing, background removal, the
//! Hunyuan3D-2 `ImageProcessorV2` recentering, and the exact Euclidean distance transform.

pub mod edt;
pub mod load;
pub mod photo;
pub mod pil_resize;
pub mod preprocess;
pub mod resize;
pub mod segment;

pub use load::{ImageLimits, LoadedImage, load_image};
pub use preprocess::{
    BackgroundMode, MaskPlan, PreprocessOptions, PreprocessedImage, Segmentation,
    SegmentationMethod, mask_plan, preprocess, preprocess_with, segmentation_input,
};
