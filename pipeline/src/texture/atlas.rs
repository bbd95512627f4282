//! UV unwrapping: charts without overlaps, flattened with little stretch and packed into one
//! square page with padding, by the `uvunwrap` crate (segmentation in a normal cone, LSCM with
//! ARAP refinement, shape packing; the xatlas pipeline that Hunyuan3D-Paint uses, in Rust).
//! `bench/uv_quality.py` compares its atlases with xatlas's.

use crate::mesh::Mesh;

/// Texels kept empty around each chart (charts are twice this apart): the bake dilates colour
/// into them so bilinear filtering and mipmaps never mix in a neighbouring chart.
pub const PADDING: u32 = 2;

/// A mesh with texture coordinates: its vertices split along chart seams.
#[derive(Debug, Clone)]
pub struct Atlas {
    /// The input mesh's triangles over split vertices, with `uvs` set (glTF's convention) in
    /// `[0, 1]²` of a square page; colours, if any, follow their vertices.
    pub mesh: Mesh,
    /// The input vertex each output vertex was split from.
    pub source_vertex: Vec<u32>,
    pub charts: u32,
    /// Share of the page's texels covered by charts.
    pub utilization: f32,
}

/// Why a mesh could not be unwrapped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AtlasError {
    #[error("stopped while unwrapping")]
    Stopped,
    #[error("{0}")]
    Unwrap(String),
    #[error("the charts need {pages} pages of {size}² texels")]
    TooManyPages { pages: u32, size: u32 },
}

/// Unwraps `mesh` onto one `size`² page. `keep_going` is asked as the unwrap progresses; `false`
/// stops it promptly.
pub fn unwrap(
    mesh: &Mesh,
    size: u32,
    keep_going: impl Fn() -> bool + Sync,
) -> Result<Atlas, AtlasError> {
    let indices: Vec<u32> = mesh.triangles.iter().flatten().copied().collect();
    let input = uvunwrap::MeshInput::new(&mesh.positions, &indices);
    let options = uvunwrap::Options {
        density: uvunwrap::Density::Auto { page_size: size },
        padding: PADDING,
        ..uvunwrap::Options::default()
    };
    let atlas = uvunwrap::generate_with_progress(&[input], &options, |_| keep_going()).map_err(
        |e| match e {
            uvunwrap::Error::Cancelled => AtlasError::Stopped,
            other => AtlasError::Unwrap(other.to_string()),
        },
    )?;
    if atlas.page_count > 1 {
        return Err(AtlasError::TooManyPages {
            pages: atlas.page_count,
            size,
        });
    }
    let out = atlas
        .meshes
        .into_iter()
        .next()
        .ok_or_else(|| AtlasError::Unwrap("no output mesh".into()))?;
    // The page is cropped to the rows it uses; the texture stays square, so v is rescaled.
    let v_scale = atlas.height as f32 / size as f32;
    let source_vertex: Vec<u32> = out.vertices.iter().map(|v| v.xref).collect();
    let uvs = out
        .vertices
        .iter()
        .map(|v| [v.uv[0], v.uv[1] * v_scale])
        .collect();
    let positions = source_vertex
        .iter()
        .map(|&i| mesh.positions[i as usize])
        .collect();
    let colors = mesh.colors.as_ref().map(|c| {
        source_vertex
            .iter()
            .map(|&i| c[i as usize])
            .collect::<Vec<_>>()
    });
    let triangles = out
        .indices
        .chunks_exact(3)
        .map(|t| [t[0], t[1], t[2]])
        .collect();
    Ok(Atlas {
        mesh: Mesh {
            positions,
            triangles,
            colors,
            uvs: Some(uvs),
            texture: None,
        },
        source_vertex,
        charts: atlas.chart_count,
        utilization: atlas.utilization * v_scale,
    })
}
