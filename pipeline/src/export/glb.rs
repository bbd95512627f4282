//! glTF 2.0 binary: positions, unit normals, u32 indices and one material, coloured either by a
//! linear-space COLOR_0 or, for a UV-textured mesh, by TEXCOORD_0 and a `baseColorTexture`
//! (the texture embedded as JPEG in the binary chunk; glTF reads it as sRGB).

use serde_json::json;

use orfeas_vocab::MeshFormat;

use crate::error::ExportError;
use crate::mesh::Mesh;

const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const UNSIGNED_INT: u32 = 5125;

fn srgb_to_linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Clamp to edge: an atlas must not wrap colour from the opposite border into a chart.
const CLAMP_TO_EDGE: u32 = 33071;
const LINEAR: u32 = 9729;
const LINEAR_MIPMAP_LINEAR: u32 = 9987;

/// `texture`: the encoded base-colour image (with its MIME type) of a UV-textured mesh.
pub(super) fn write(
    mesh: &Mesh,
    texture: Option<(Vec<u8>, &'static str)>,
) -> Result<Vec<u8>, ExportError> {
    let n = mesh.positions.len();
    let normals = mesh.vertex_normals();
    let (lo, hi) = mesh.bounds().ok_or(ExportError::EmptyMesh)?;

    let mut bin: Vec<u8> = Vec::new();
    let mut views = Vec::new();
    let mut push_view = |bin: &mut Vec<u8>, data: Vec<u8>, target: u32| {
        let offset = bin.len();
        let len = data.len();
        bin.extend(data);
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
        views.push(json!({"buffer": 0, "byteOffset": offset, "byteLength": len, "target": target}));
        views.len() - 1
    };
    let f32s =
        |it: &mut dyn Iterator<Item = f32>| it.flat_map(f32::to_le_bytes).collect::<Vec<u8>>();

    let pos_view = push_view(
        &mut bin,
        f32s(&mut mesh.positions.iter().flatten().copied()),
        ARRAY_BUFFER,
    );
    let nrm_view = push_view(
        &mut bin,
        f32s(&mut normals.iter().flatten().copied()),
        ARRAY_BUFFER,
    );
    let uvs = mesh.uvs.as_ref().filter(|_| texture.is_some());
    let uv_view = uvs.map(|uvs| {
        push_view(
            &mut bin,
            f32s(&mut uvs.iter().flatten().copied()),
            ARRAY_BUFFER,
        )
    });
    // COLOR_0 would multiply the texture; a textured mesh carries its colour in the texture.
    let col_view = mesh
        .colors
        .as_ref()
        .filter(|_| uvs.is_none())
        .map(|colors| {
            let mut lin = colors.iter().flatten().map(|&c| srgb_to_linear(c));
            push_view(&mut bin, f32s(&mut lin), ARRAY_BUFFER)
        });
    let idx: Vec<u8> = mesh
        .triangles
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let idx_view = push_view(&mut bin, idx, ELEMENT_ARRAY_BUFFER);
    // Images are not vertex data: their view has no target.
    let image = texture.map(|(bytes, mime)| {
        let offset = bin.len();
        let len = bytes.len();
        bin.extend(bytes);
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
        views.push(json!({"buffer": 0, "byteOffset": offset, "byteLength": len}));
        (views.len() - 1, mime)
    });

    let mut accessors = vec![
        json!({"bufferView": pos_view, "componentType": FLOAT, "count": n, "type": "VEC3",
               "min": lo, "max": hi}),
        json!({"bufferView": nrm_view, "componentType": FLOAT, "count": n, "type": "VEC3"}),
    ];
    let mut attributes = json!({"POSITION": 0, "NORMAL": 1});
    if let Some(view) = col_view {
        accessors
            .push(json!({"bufferView": view, "componentType": FLOAT, "count": n, "type": "VEC3"}));
        attributes["COLOR_0"] = json!(accessors.len() - 1);
    }
    if let Some(view) = uv_view {
        accessors
            .push(json!({"bufferView": view, "componentType": FLOAT, "count": n, "type": "VEC2"}));
        attributes["TEXCOORD_0"] = json!(accessors.len() - 1);
    }
    accessors.push(
        json!({"bufferView": idx_view, "componentType": UNSIGNED_INT,
                          "count": mesh.triangles.len() * 3, "type": "SCALAR"}),
    );
    let indices = accessors.len() - 1;

    let mut pbr = json!({"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
                         "roughnessFactor": 0.9});
    let mut material = json!({"name": "vertex_colour", "pbrMetallicRoughness": pbr});
    let mut doc = json!({
        "asset": {"version": "2.0", "generator": concat!("ORFEAS ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "orfeas_mesh"}],
        "meshes": [{"primitives": [{"attributes": attributes, "indices": indices, "material": 0, "mode": 4}]}],
        "buffers": [{"byteLength": bin.len()}],
        "bufferViews": views,
        "accessors": accessors,
    });
    if let Some((view, mime)) = image {
        pbr["baseColorTexture"] = json!({"index": 0, "texCoord": 0});
        material = json!({"name": "baked_texture", "pbrMetallicRoughness": pbr});
        doc["images"] = json!([{"bufferView": view, "mimeType": mime}]);
        doc["samplers"] = json!([{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR,
                                  "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}]);
        doc["textures"] = json!([{"source": 0, "sampler": 0}]);
    }
    doc["materials"] = json!([material]);
    let mut json_bytes = serde_json::to_vec(&doc).map_err(|e| ExportError::TooLarge {
        format: MeshFormat::Glb,
        detail: e.to_string(),
    })?;
    while !json_bytes.len().is_multiple_of(4) {
        json_bytes.push(b' ');
    }
    let total = 12 + 8 + json_bytes.len() + 8 + bin.len();
    let total32 = u32::try_from(total).map_err(|_| ExportError::TooLarge {
        format: MeshFormat::Glb,
        detail: format!("{total} bytes exceed the 4 GiB GLB limit"),
    })?;
    let mut out = Vec::with_capacity(total);
    out.extend(b"glTF");
    out.extend(2u32.to_le_bytes());
    out.extend(total32.to_le_bytes());
    out.extend((json_bytes.len() as u32).to_le_bytes());
    out.extend(b"JSON");
    out.extend(json_bytes);
    out.extend((bin.len() as u32).to_le_bytes());
    out.extend(b"BIN\0");
    out.extend(bin);
    Ok(out)
}
