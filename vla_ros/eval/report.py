"""Evaluation output: a JSON summary, PNG plots and one self-contained HTML report.

The HTML embeds every plot as a base64 data URI, so it can be mailed or attached to a ticket as a
single file. Files are written under temporary names and renamed, so an interrupted run never leaves a
half-written report behind.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.action import ACTION_NAMES
from vla_ros.eval.evaluate import EvalResult
from vla_ros.eval.metrics import ActionMetrics

_UNITS = ("m", "m", "m", "rad", "rad", "rad", "")


@dataclass
class ReportFiles:
    summary_json: Path
    html: Path
    plots: list[Path]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _new_figure(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fig.savefig(fh, format="png")
    os.replace(tmp, path)


def plot_episode_actions(result: EvalResult, episode_index: int, path: Path) -> Path:
    """Recorded action and every model's prediction, per dimension over time."""
    ep = result.episodes[episode_index]
    t = (ep.timestamps_ns - ep.timestamps_ns[0]) / 1e9 if len(ep) else np.zeros(0)
    fig, axes = _new_figure(7, 1, (8, 11))
    for d, name in enumerate(ACTION_NAMES):
        ax = axes[d, 0]
        ax.plot(t, ep.actions[:, d], color="black", linewidth=2.5, alpha=0.6, label="recorded (ground truth)")
        for model_name, ev in result.models.items():
            pred = ev.predictions[episode_index]
            ax.plot(t, pred.predicted[:, d], linewidth=1, marker=".", label=f"predicted: {model_name}")
        ax.set_ylabel(f"{name} [{_UNITS[d]}]" if _UNITS[d] else name)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"{ep.episode_id}: {ep.instruction}")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time since episode start [s]")
    _save(fig, path)
    return path


def plot_error_histograms(result: EvalResult, model_name: str, path: Path) -> Path:
    """Distribution of predicted - recorded per dimension over all steps."""
    ev = result.models[model_name]
    err = np.concatenate([p.predicted - p.recorded for p in ev.predictions])
    err = err[np.all(np.isfinite(err), axis=1)]
    fig, axes = _new_figure(2, 4, (12, 5.5))
    for d, name in enumerate(ACTION_NAMES):
        ax = axes[d // 4, d % 4]
        ax.hist(err[:, d], bins=30, color="tab:blue")
        ax.set_title(f"{name} error [{_UNITS[d]}]" if _UNITS[d] else f"{name} error")
        ax.grid(alpha=0.3)
    axes[1, 3].axis("off")
    fig.suptitle(f"{model_name}: predicted - recorded ({len(err)} steps)")
    _save(fig, path)
    return path


def _json_safe(value: object) -> object:
    """NaN/inf become null so the summary is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _per_dim_rows(m: ActionMetrics) -> list[list[object]]:
    return [[name, m.mae[name], m.rmse[name]] for name in ACTION_NAMES]


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 0.8em; }
"""


def render_html(result: EvalResult, episode_plots: list[Path], histogram_plots: dict[str, Path]) -> str:
    rows = result.comparison_rows()
    cols = [
        ("model", "model"),
        ("steps", "steps"),
        ("mae_translation_m", "MAE transl. [m]"),
        ("mae_rotation_rad", "MAE rot. [rad]"),
        ("mae_gripper", "MAE gripper"),
        ("rmse_translation_m", "RMSE transl. [m]"),
        ("gripper_accuracy", "gripper acc."),
        ("token_accuracy", "token acc."),
        ("direction_cosine_mean", "direction cos."),
        ("latency_p50_s", "latency p50 [s]"),
        ("latency_p95_s", "latency p95 [s]"),
        ("nonfinite_predictions", "NaN/inf preds"),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>vla_ros offline evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Offline evaluation by rosbag replay</h1>",
        "<p>Bags: " + ", ".join(html.escape(b) for b in result.bags) + "</p>",
        f"<p>{len(result.episodes)} episode(s), {sum(len(e) for e in result.episodes)} step(s); settings: "
        + html.escape(json.dumps(result.settings))
        + "</p>",
        "<h2>Models side by side</h2>",
        _table([c[1] for c in cols], [[r[c[0]] for c in cols] for r in rows]),
        "<p>Errors are in action units per control period. Direction cosine uses only steps where both "
        "translations are at least min_translation_norm_m long. Gripper open means >= the threshold.</p>",
        "<h2>Data</h2><pre>" + html.escape(result.cleaning.summary()) + "</pre>",
    ]
    for name, ev in result.models.items():
        m = ev.metrics.overall
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(_table(["dimension", "MAE", "RMSE"], _per_dim_rows(m)))
        ep_rows = [
            [
                ep_id,
                em.num_steps,
                em.mae_translation_m,
                em.mae_rotation_rad,
                em.gripper_accuracy,
                em.token_accuracy,
                em.direction_cosine_mean,
                em.latency_p50_s,
            ]
            for ep_id, em in ev.metrics.per_episode.items()
        ]
        parts.append(
            _table(
                [
                    "episode",
                    "steps",
                    "MAE transl. [m]",
                    "MAE rot. [rad]",
                    "gripper acc.",
                    "token acc.",
                    "direction cos.",
                    "latency p50 [s]",
                ],
                ep_rows,
            )
        )
        if name in histogram_plots:
            parts.append(_img(histogram_plots[name], f"error histograms {name}"))
    parts.append("<h2>Episodes: predicted vs recorded</h2>")
    if len(episode_plots) < len(result.episodes):
        parts.append(f"<p>First {len(episode_plots)} of {len(result.episodes)} episodes shown.</p>")
    parts.extend(_img(p, p.stem) for p in episode_plots)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: EvalResult, out_dir: str | Path, max_episode_plots: int = 8) -> ReportFiles:
    """summary.json, plots/*.png and report.html (plots embedded) under ``out_dir``."""
    out = Path(out_dir)
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    episode_plots = [
        plot_episode_actions(result, i, plots_dir / f"episode_{i:03d}_{_safe(ep.episode_id)}.png")
        for i, ep in enumerate(result.episodes[:max_episode_plots])
    ]
    histogram_plots = {
        name: plot_error_histograms(result, name, plots_dir / f"errors_{i:02d}_{_safe(name)}.png")
        for i, name in enumerate(result.models)
    }
    summary = out / "summary.json"
    _atomic_write(summary, json.dumps(_json_safe(result.to_dict()), indent=2, allow_nan=False).encode())
    report = out / "report.html"
    _atomic_write(report, render_html(result, episode_plots, histogram_plots).encode("utf-8"))
    return ReportFiles(summary, report, episode_plots + list(histogram_plots.values()))


def format_comparison(result: EvalResult) -> str:
    """The side-by-side table as plain text for the terminal."""
    keys = [
        ("model", "model"),
        ("mae_translation_m", "MAE_t[m]"),
        ("mae_rotation_rad", "MAE_r[rad]"),
        ("gripper_accuracy", "grip_acc"),
        ("token_accuracy", "tok_acc"),
        ("direction_cosine_mean", "dir_cos"),
        ("latency_p50_s", "p50[s]"),
        ("latency_p95_s", "p95[s]"),
    ]
    rows = [[_fmt(r[k]) for k, _ in keys] for r in result.comparison_rows()]
    header = [h for _, h in keys]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines)
