//! How a job's object mask was found. The mask decides the shape, so the method and the mask's
//! share of the image are reported with every job (item report, job view, metric label): a user
//! can tell a bad mask from a bad shape, an operator sees which method the fleet relies on.

use serde::{Deserialize, Serialize};

use crate::names::named_enum;

named_enum! {
    /// The source of the object mask, in the order preprocessing tries them.
    pub enum SegmentationMethod: "segmentation method" {
        /// The image's own alpha channel carried real transparency.
        Alpha = "alpha",
        /// The U²-Net model (`worker.segmentation_weights`), as rembg runs it.
        U2net = "u2net",
        /// The border colour model: the object stands on a plain or gradient background.
        PlainBackground = "plain_background",
        /// The weights-free photo method: a saliency prior refined by iterated graph cuts.
        Classic = "classic",
        /// No segmentation (`remove_background: never` on an image without transparency): the
        /// whole image is the object.
        WholeImage = "whole_image",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text SegmentationMethod);

/// The mask a job's shape was made from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Segmentation {
    pub method: SegmentationMethod,
    /// Share of the input image's pixels inside the mask (alpha ≥ 128), 0–1.
    pub mask_share: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_reported() {
        for m in SegmentationMethod::ALL {
            assert_eq!(m.as_str().parse::<SegmentationMethod>().expect("name"), m);
        }
        let s = Segmentation {
            method: SegmentationMethod::PlainBackground,
            mask_share: 0.25,
        };
        assert_eq!(
            serde_json::to_value(s).expect("json"),
            serde_json::json!({"method": "plain_background", "mask_share": 0.25})
        );
    }
}
