//! `orfeas generate`: images → meshes on this machine, no services and no model weights needed.
//! The arguments become the same validated `JobSpec` a job upload becomes (same ranges, same
//! defaults, same mapping onto the pipeline's options); the engine is loaded by the same code
//! as a worker's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::segmentation::load_segmenter;
use orfeas_pipeline::shape::{EngineSpec, load_engine};
use orfeas_pipeline::texture::paint::{PaintSettings, PainterSpec, load_painter};
use orfeas_pipeline::texture::raster::rasterizer_for;
use orfeas_pipeline::{BatchItem, ItemReport, JobOptions, Pipeline, ProgressObserver, Stage};
use orfeas_vocab::options::defaults;
use orfeas_vocab::texture::face_budget;
use orfeas_vocab::{
    Artifact, BackgroundMode, Device, Dtype, Engine, JobSpec, MeshFormat, TextureMode,
    VolumeDecoding,
};
use tracing_subscriber::EnvFilter;

use crate::report::timing_table;

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Input images (PNG, JPEG or WebP); all of them run as one batch.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Output directory (created if missing); meshes are written as `<image stem>.<format>`.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Mesh formats, comma separated: glb, obj, stl, ply.
    #[arg(long, value_delimiter = ',', default_values_t = [defaults::FORMAT])]
    pub format: Vec<MeshFormat>,
    /// Volume grid resolution (64–512).
    #[arg(long, default_value_t = defaults::OCTREE_RESOLUTION)]
    pub resolution: u32,
    /// Reduce each mesh to at most this many faces (100–2000000), or `all` to keep every face
    /// (default 40000).
    #[arg(long, value_parser = parse_faces)]
    pub faces: Option<u64>,
    /// Shape engine: inflate (weights-free) or hunyuan3d (needs --weights).
    #[arg(long, default_value_t = Engine::Inflate)]
    pub engine: Engine,
    /// Background removal: auto (use real alpha, else segment), always, never.
    #[arg(long, default_value_t = defaults::BACKGROUND)]
    pub background: BackgroundMode,
    /// Thickness of inflated shapes (1.0 turns a disk into a sphere; 0.05–4).
    #[arg(long, default_value_t = defaults::INFLATION)]
    pub inflation: f32,
    /// hunyuan3d: the checkpoint folder (config.yaml + model.fp16.safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// hunyuan3d: denoising steps (default: the checkpoint's — 50 for v2-0/mini, 30 for -fast,
    /// 5 for -turbo).
    #[arg(long)]
    pub steps: Option<u32>,
    /// hunyuan3d: guidance scale.
    #[arg(long, default_value_t = defaults::GUIDANCE_SCALE)]
    pub guidance: f32,
    /// hunyuan3d: noise seed.
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// hunyuan3d: query points per decoder call.
    #[arg(long, default_value_t = defaults::NUM_CHUNKS)]
    pub chunks: u32,
    /// hunyuan3d: volume decoding, hierarchical or dense.
    #[arg(long, default_value_t = VolumeDecoding::Hierarchical)]
    pub decoding: VolumeDecoding,
    /// hunyuan3d: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
    /// hunyuan3d: compute dtype, f32 (CPU) or f16/bf16 (CUDA).
    #[arg(long, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Also write the 512² RGBA cut-out the engine sees as `<image stem>.cutout.png`.
    #[arg(long = "save-cutout", visible_alias = "cutout")]
    pub cutout: bool,
    /// U²-Net weights for background removal (rembg's `u2net.onnx` / `u2netp.onnx`, the
    /// original `u2net.pth` / `u2netp.pth`, or safetensors); without them photos are segmented
    /// by the weights-free method.
    #[arg(long, value_name = "FILE")]
    pub segmentation_weights: Option<PathBuf>,
    /// Hunyuan3D-Paint's multiview folder (`hunyuan3d-paint-v2-0` or `-turbo`), for `--texture
    /// paint`; needs `--delight-weights`.
    #[arg(long, value_name = "DIR", requires = "delight_weights")]
    pub paint_weights: Option<PathBuf>,
    /// Hunyuan3D-Paint's delight folder (`hunyuan3d-delight-v2-0`), for `--texture paint`.
    #[arg(long, value_name = "DIR", requires = "paint_weights")]
    pub delight_weights: Option<PathBuf>,
    /// The paint models' image side (the released models: 512).
    #[arg(long, default_value_t = PaintSettings::REFERENCE.view_size)]
    pub paint_view_size: usize,
    /// The side `--texture paint` renders its control maps at and bakes its views from.
    #[arg(long, default_value_t = PaintSettings::REFERENCE.render_size)]
    pub paint_render_size: usize,
    /// Texture: uv (a UV atlas and a texture baked from the image), paint (a UV texture baked from
    /// six views Hunyuan3D-Paint generates; needs --paint-weights and --delight-weights), vertex
    /// (vertex colours) or none.
    #[arg(long, default_value_t = TextureMode::default(), conflicts_with = "no_texture")]
    pub texture: TextureMode,
    /// Side of the baked texture in texels (256–4096; `--texture uv` or `paint`).
    #[arg(long, default_value_t = defaults::TEXTURE_SIZE)]
    pub texture_size: u32,
    /// Skip texture synthesis (the same as `--texture none`).
    #[arg(long)]
    pub no_texture: bool,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl GenerateArgs {
    /// The job specification these arguments describe, checked like an upload's.
    pub fn spec(&self) -> anyhow::Result<JobSpec> {
        let spec = JobSpec {
            engine: self.engine,
            seed: self.seed,
            steps: self.steps,
            guidance_scale: self.guidance,
            octree_resolution: self.resolution,
            num_chunks: self.chunks,
            face_count: face_budget(self.faces)
                .map_err(|e| anyhow::anyhow!("invalid option {e}"))?,
            formats: self.format.clone(),
            remove_background: self.background,
            texture: if self.no_texture {
                TextureMode::None
            } else {
                self.texture
            },
            texture_size: self.texture_size,
            inflation: self.inflation,
            cutout: self.cutout,
            ..JobSpec::default()
        };
        spec.validated()
            .map_err(|e| anyhow::anyhow!("invalid option {e}"))
    }

    pub fn engine_spec(&self) -> EngineSpec {
        EngineSpec {
            engine: self.engine,
            weights: self.weights.clone(),
            device: self.device,
            dtype: self.dtype,
            volume_decoding: self.decoding,
        }
    }
}

/// Outcome of one `generate` run.
#[derive(Debug)]
pub struct GenerateSummary {
    pub written: Vec<PathBuf>,
    pub failures: Vec<(PathBuf, String)>,
    pub reports: Vec<ItemReport>,
    pub table: String,
}

struct Bars {
    bars: Vec<ProgressBar>,
}

impl ProgressObserver for Bars {
    fn stage_started(&mut self, item: usize, stage: Stage) {
        self.bars[item].set_message(stage.as_str());
    }

    fn stage_finished(&mut self, item: usize, stage: Stage, elapsed: Duration, ok: bool) {
        let bar = &self.bars[item];
        if ok {
            bar.set_position(stage.index() as u64 + 1);
            bar.set_message(format!("{stage} done in {:.2}s", elapsed.as_secs_f64()));
        } else {
            bar.abandon_with_message(format!("failed in {stage}"));
        }
    }
}

/// `--faces`: a count, or `all` (read as `0`, which the face-budget rule takes as every face).
fn parse_faces(given: &str) -> Result<u64, String> {
    if given.trim().eq_ignore_ascii_case("all") {
        return Ok(0);
    }
    given
        .trim()
        .parse()
        .map_err(|_| format!("`{given}` is neither a face count nor `all`"))
}

/// Unique output stems: `a.png` and `a.jpg` become `a` and `a-2`.
fn output_stems(images: &[PathBuf]) -> Vec<String> {
    let mut seen = HashSet::new();
    images
        .iter()
        .map(|p| {
            let base = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mesh".into());
            let mut name = base.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// The file an artifact of an image is written to: `stem.glb`, …, `stem.cutout.png`.
fn output_file(out: &Path, stem: &str, artifact: Artifact) -> PathBuf {
    out.join(artifact.download_name(stem))
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<GenerateSummary> {
    let spec = args.spec()?;
    let opts = JobOptions::from(&spec);
    let limits = ImageLimits::default();
    let inputs: Vec<Vec<u8>> = args
        .images
        .iter()
        .map(|p| read_limited(p, limits.max_bytes))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;

    let engine = load_engine(&args.engine_spec()).map_err(|e| match &args.weights {
        None if args.engine.needs_weights() => {
            anyhow::anyhow!(
                "--engine {} needs --weights DIR (a checkpoint folder)",
                args.engine
            )
        }
        _ => anyhow::anyhow!("loading the {} engine: {e}", args.engine),
    })?;
    let mut pipeline = Pipeline::new(engine, limits);
    if let Some(path) = &args.segmentation_weights {
        let segmenter = load_segmenter(path, args.device)
            .map_err(|e| anyhow::anyhow!("loading the segmentation weights: {e}"))?;
        pipeline = pipeline.with_segmenter(segmenter);
    }
    if let (Some(paint), Some(delight)) = (&args.paint_weights, &args.delight_weights) {
        let painter = load_painter(&PainterSpec {
            paint: paint.clone(),
            delight: delight.clone(),
            device: args.device,
            dtype: args.dtype,
            view_size: args.paint_view_size,
            render_size: args.paint_render_size,
        })
        .map_err(|e| anyhow::anyhow!("loading the paint models: {e}"))?;
        pipeline = pipeline.with_painter(painter);
    } else if opts.texture == TextureMode::Paint {
        anyhow::bail!("--texture paint needs --paint-weights DIR and --delight-weights DIR");
    }
    pipeline = pipeline.with_rasterizer(rasterizer_for(args.device));
    let stems = output_stems(&args.images);
    let items: Vec<BatchItem<'_>> = inputs
        .iter()
        .zip(&stems)
        .map(|(bytes, stem)| BatchItem::new(bytes, &opts).with_name(stem.clone()))
        .collect();

    let multi = MultiProgress::with_draw_target(if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:20}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars = args
        .images
        .iter()
        .map(|p| {
            let bar = multi.add(ProgressBar::new(Stage::ALL.len() as u64));
            bar.set_style(style.clone());
            bar.set_prefix(
                p.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            bar
        })
        .collect();
    let mut observer = Bars { bars };
    let reports = pipeline.run_batch(&items, &mut observer);
    observer.bars.iter().for_each(|b| {
        if !b.is_finished() {
            b.finish();
        }
    });

    let mut written = Vec::new();
    let mut failures = Vec::new();
    let mut masks = Vec::new();
    for ((report, stem), path) in reports.iter().zip(&stems).zip(&args.images) {
        match &report.result {
            Ok(output) => {
                for (artifact, bytes) in &output.files {
                    let dest = output_file(&args.out, stem, *artifact);
                    std::fs::write(&dest, bytes)
                        .with_context(|| format!("writing {}", dest.display()))?;
                    written.push(dest);
                }
            }
            Err(e) => failures.push((path.clone(), format!("[{}] {e}", e.code()))),
        }
        if let Some(seg) = report.segmentation {
            masks.push(format!(
                "{}: mask by {}, {:.1}% of the image\n",
                path.display(),
                seg.method,
                seg.mask_share * 100.0
            ));
        }
    }
    let table =
        masks.concat() + "\n" + &timing_table(reports.iter().map(|r| (&r.timings, r.batch_size)));
    Ok(GenerateSummary {
        written,
        failures,
        reports,
        table,
    })
}

fn read_limited(path: &Path, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > max_bytes {
        bail!(
            "{}: {} bytes is over the input limit of {max_bytes} bytes",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The command: runs, prints what was written and the timing table. Exit status 0 when every
/// image succeeded, 1 when some failed, 2 when the command itself could not run.
pub fn main(args: &GenerateArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(summary) => {
            let mut text = String::new();
            for path in &summary.written {
                text.push_str(&format!("wrote {}\n", path.display()));
            }
            for (path, err) in &summary.failures {
                text.push_str(&format!("FAILED {}: {err}\n", path.display()));
            }
            text.push('\n');
            text.push_str(&summary.table);
            // The command's result is its standard output.
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).ok();
            if summary.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
