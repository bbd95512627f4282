// Reads a GLB's statistics from its JSON chunk (glTF 2.0 binary container): the figures the
// result view shows come from the file the user downloads, not from a second source.

const MAGIC = 0x46546c67; // "glTF"
const JSON_CHUNK = 0x4e4f534a; // "JSON"

/** {vertices, faces, primitives, textured, vertexColours, materials} of a GLB, or throws. */
export function glbStats(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < 20 || view.getUint32(0, true) !== MAGIC) throw new Error("not a GLB file");
  const chunkLength = view.getUint32(12, true);
  if (view.getUint32(16, true) !== JSON_CHUNK || 20 + chunkLength > buffer.byteLength) {
    throw new Error("the GLB has no JSON chunk");
  }
  const gltf = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 20, chunkLength)));
  const accessors = gltf.accessors ?? [];
  let vertices = 0;
  let faces = 0;
  let primitives = 0;
  let vertexColours = false;
  for (const mesh of gltf.meshes ?? []) {
    for (const p of mesh.primitives ?? []) {
      primitives += 1;
      const count = accessors[p.attributes?.POSITION]?.count ?? 0;
      vertices += count;
      const mode = p.mode ?? 4;
      if (mode === 4) faces += Math.floor((p.indices !== undefined ? accessors[p.indices]?.count ?? 0 : count) / 3);
      if (p.attributes?.COLOR_0 !== undefined) vertexColours = true;
    }
  }
  const textured = (gltf.materials ?? []).some((m) => m.pbrMetallicRoughness?.baseColorTexture);
  return { vertices, faces, primitives, textured, vertexColours, bytes: buffer.byteLength };
}
