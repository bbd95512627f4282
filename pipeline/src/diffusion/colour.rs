//! The delight model's colour correction (hy3dgen 2.0.2 `Light_Shadow_Remover.recorrect_rgb`):
//! each channel of the delit image is shifted and scaled so that, over the object's pixels
//! (alpha > 0.5), its mean and spread approach the input's — the diffusion model may drift in
//! overall tone — unless that makes the whole image further from the input than it was.
//! Computed in f64 as the reference computes it (numpy images / 255.0).

/// How far the means are matched: the reference keeps 5 % of the delit image's own mean.
const SCALE: f64 = 0.95;

/// `src` (the delit image) corrected towards `target` (the input) over the pixels where
/// `alpha > 0.5`; all three are per pixel, colours in [0, 1]. Returns the corrected colours, or
/// `src` itself when correcting would raise the mean squared difference to `target` (measured
/// over every pixel, as the reference measures it).
///
/// One deviation: where the reference's ratio of spreads is not a number (fewer than two object
/// pixels, or a delit channel without spread: 0 / 0 or x / 0), it writes NaN or saturated
/// colours; here the source is kept.
pub fn recorrect(src: &[[f64; 3]], target: &[[f64; 3]], alpha: &[f64]) -> Vec<[f64; 3]> {
    let masked: Vec<usize> = (0..src.len()).filter(|&i| alpha[i] > 0.5).collect();
    let mut out = vec![[0f64; 3]; src.len()];
    for c in 0..3 {
        let (s_mean, s_std) = mean_std(masked.iter().map(|&i| src[i][c]));
        let (t_mean, t_std) = mean_std(masked.iter().map(|&i| target[i][c]));
        let ratio = t_std / s_std;
        if !ratio.is_finite() || !s_mean.is_finite() {
            return src.to_vec();
        }
        for (o, s) in out.iter_mut().zip(src) {
            o[c] = ((s[c] - SCALE * s_mean) * ratio + SCALE * t_mean).clamp(0.0, 1.0);
        }
    }
    if mse(src, target) < mse(&out, target) {
        src.to_vec()
    } else {
        out
    }
}

/// Mean and unbiased standard deviation (torch.std); NaN for fewer than two values.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn mse(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (0..3).map(|c| (x[c] - y[c]) * (x[c] - y[c])).sum::<f64>())
        .sum();
    sum / (3 * a.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_image_is_shifted_back_and_a_worse_correction_is_refused() {
        let target: Vec<[f64; 3]> = (0..64).map(|i| [i as f64 / 100.0, 0.5, 0.3]).collect();
        let src: Vec<[f64; 3]> = target
            .iter()
            .map(|t| [t[0] * 0.5 + 0.1, t[1], t[2]])
            .collect();
        let alpha = vec![1.0; 64];
        let out = recorrect(&src, &target, &alpha);
        // Channels 1 and 2 have no spread in the delit image: the correction is undefined there.
        assert_eq!(out, src);
        assert_eq!(
            recorrect(&src, &target, &[0.0; 64]),
            src,
            "no object pixels"
        );
        let src2: Vec<[f64; 3]> = target
            .iter()
            .enumerate()
            .map(|(i, t)| {
                [
                    t[0] * 0.5 + 0.1,
                    t[1] * 0.9 + (i % 2) as f64 * 0.01,
                    t[2] + (i % 3) as f64 * 0.01,
                ]
            })
            .collect();
        let target2: Vec<[f64; 3]> = target
            .iter()
            .enumerate()
            .map(|(i, t)| {
                [
                    t[0],
                    t[1] + (i % 2) as f64 * 0.02,
                    t[2] + (i % 3) as f64 * 0.02,
                ]
            })
            .collect();
        let out = recorrect(&src2, &target2, &alpha);
        let err_before = mse(&src2, &target2);
        let err_after = mse(&out, &target2);
        assert!(err_after < err_before, "{err_after} {err_before}");
    }
}
