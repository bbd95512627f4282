//! `orfeas generate`: images → meshes on this machine, no services and no model weights needed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use orfeas_pipeline::image::{BackgroundMode, ImageLimits};
use orfeas_pipeline::shape::{InflateEngine, ShapeEngine};
use orfeas_pipeline::{
    BatchItem, ItemReport, JobOptions, MeshFormat, Pipeline, ProgressObserver, Stage,
};

use crate::report::timing_table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Weights-free silhouette inflation.
    Inflate,
    /// Tencent's Hunyuan3D-2 shape model (needs --weights).
    Hunyuan3d,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Input images (PNG, JPEG or WebP); all of them run as one batch.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Output directory (created if missing); meshes are written as `<image stem>.<format>`.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Mesh formats, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "glb")]
    pub format: Vec<MeshFormat>,
    /// Volume grid resolution (64–512).
    #[arg(long, default_value_t = 256)]
    pub resolution: u32,
    /// Reduce each mesh to at most this many faces.
    #[arg(long)]
    pub faces: Option<usize>,
    #[arg(long, value_enum, default_value_t = EngineKind::Inflate)]
    pub engine: EngineKind,
    /// Background removal: auto (use real alpha, else segment), always, never.
    #[arg(long, default_value = "auto")]
    pub background: BackgroundMode,
    /// Thickness of inflated shapes (1.0 turns a disk into a sphere).
    #[arg(long, default_value_t = 1.0)]
    pub inflation: f32,
    /// hunyuan3d: the checkpoint folder (config.yaml + model.fp16.safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// hunyuan3d: denoising steps (the checkpoint's sampler; 5 suit turbo models, 30-50 others).
    #[arg(long, default_value_t = 30)]
    pub steps: u32,
    /// hunyuan3d: guidance scale.
    #[arg(long, default_value_t = 5.0)]
    pub guidance: f32,
    /// hunyuan3d: noise seed.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// hunyuan3d: query points per decoder call.
    #[arg(long, default_value_t = 8000)]
    pub chunks: u32,
    /// hunyuan3d: volume decoding, hierarchical or dense.
    #[arg(long, default_value = "hierarchical")]
    pub decoding: String,
    /// hunyuan3d: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// hunyuan3d: compute dtype, f32 (CPU) or f16/bf16 (CUDA).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Skip texture synthesis (meshes without vertex colours).
    #[arg(long)]
    pub no_texture: bool,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl GenerateArgs {
    pub fn job_options(&self) -> JobOptions {
        let mut opts = JobOptions::default();
        opts.preprocess.background = self.background;
        opts.shape.octree_resolution = self.resolution;
        opts.shape.inflation = self.inflation;
        opts.shape.steps = self.steps;
        opts.shape.guidance_scale = self.guidance;
        opts.shape.seed = self.seed;
        opts.shape.num_chunks = self.chunks;
        opts.postprocess.face_count = self.faces;
        opts.texture = !self.no_texture;
        let mut formats = self.format.clone();
        formats.sort();
        formats.dedup();
        opts.formats = formats;
        opts
    }
}

/// The engine the arguments name, with its model loaded.
pub fn engine(args: &GenerateArgs) -> anyhow::Result<Box<dyn ShapeEngine>> {
    use orfeas_pipeline::shape::hunyuan3d::{Hunyuan3dSettings, load_engine};
    match args.engine {
        EngineKind::Inflate => Ok(Box::new(InflateEngine)),
        EngineKind::Hunyuan3d => {
            let Some(dir) = &args.weights else {
                bail!("--engine hunyuan3d needs --weights DIR (a checkpoint folder)");
            };
            let settings = Hunyuan3dSettings::from_names(&args.dtype, &args.decoding)?;
            load_engine(dir, &args.device, settings)
                .with_context(|| format!("loading the hunyuan3d checkpoint {}", dir.display()))
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

pub fn run(args: &GenerateArgs) -> anyhow::Result<GenerateSummary> {
    if args.format.is_empty() {
        bail!("--format needs at least one format");
    }
    let opts = args.job_options();
    opts.shape.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = ImageLimits::default();
    let inputs: Vec<Vec<u8>> = args
        .images
        .iter()
        .map(|p| read_limited(p, limits.max_bytes))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;

    let pipeline = Pipeline::new(engine(args)?, limits);
    let items: Vec<BatchItem<'_>> = inputs
        .iter()
        .map(|bytes| BatchItem::new(bytes, &opts))
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

    let stems = output_stems(&args.images);
    let mut written = Vec::new();
    let mut failures = Vec::new();
    for ((report, stem), path) in reports.iter().zip(&stems).zip(&args.images) {
        match &report.result {
            Ok(output) => {
                for (format, bytes) in &output.files {
                    let dest = args.out.join(format!("{stem}.{}", format.extension()));
                    std::fs::write(&dest, bytes)
                        .with_context(|| format!("writing {}", dest.display()))?;
                    written.push(dest);
                }
            }
            Err(e) => failures.push((path.clone(), format!("[{}] {e}", e.code()))),
        }
    }
    let table = timing_table(reports.iter().map(|r| (&r.timings, r.batch_size)));
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
