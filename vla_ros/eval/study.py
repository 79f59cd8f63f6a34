"""The disambiguation study: how much does resolving vague operator words raise OpenVLA's success?

The question the package exists to answer. Each held-out layout of the embedded workcell (seeds as
``vla-ros sim-eval`` uses them) hosts one task the learned policy does (``move_to``, ``move_to_part``)
with a known intended target; from the layout, one operator request per *kind* is generated
(canonical words, a synonym or role word, an attribute only, a relative position, Chinese, a typo, a
reference into the dialogue history, an ambiguous request where asking is right). The same layouts
and requests then run under each *condition*:

- ``raw``: the operator's words forwarded to OpenVLA unchanged (the baseline);
- ``resolver``: :class:`~vla_ros.disambiguation.InstructionResolver` first (the core the
  disambiguation node runs; ROS-free here for speed), questions answered by a scripted operator from
  the ground truth in the question's language, then OpenVLA on the forwarded instruction;
- ``canonical``: the task's own canonical instruction (upper bound of understanding);
- ``expert``: the scripted expert with the true target (upper bound of execution);
- ``canonical@8bit`` ... ``resolver@4bit-nf4``: the policy quantized (bitsandbytes), when asked.

Every episode is a real closed-loop rollout of :func:`vla_ros.sim.run_episode`. Rollouts are
deterministic (seeded layout, physics, argmax decoding), so a rollout whose (policy, layout, task,
instruction) was already run in this study is not run again: its outcome is reused and the episode
says so (``reused``). ``reuse=False`` runs every episode.

Episodes are appended to ``episodes.jsonl`` as they finish, so Ctrl-C keeps them; the summary
(``summary.json``), the bar plot and the Markdown report are written from whatever finished.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vla_ros.errors import UserInputError
from vla_ros.model.options import DEFAULT_PRECISION, resolve_precision
from vla_ros.sim.layout import Layout, LocationSpec, PartSpec
from vla_ros.sim.tasks import MAX_EPISODE_STEPS, Task

if TYPE_CHECKING:  # the simulator (PyBullet) loads when a study runs, not when the CLI is built
    from vla_ros.sim.workcell import Workcell

STUDY_TASKS = ("move_to", "move_to_part")


class StudyConfigError(UserInputError, ValueError):
    """A condition, quantization, request kind or task the study does not have."""


REQUEST_KINDS = ("canonical", "synonym", "attribute", "relative", "chinese", "typo", "history", "ambiguous")
BASE_CONDITIONS = ("raw", "resolver", "canonical", "expert")
# Conditions that may run on a quantized policy (the ones whose words are the policy's own).
QUANTIZABLE_CONDITIONS = ("canonical", "resolver")
QUANTIZATIONS = ("8bit", "4bit-nf4")
# A scripted operator answers at most this many questions per episode; then the request is dropped.
MAX_QUESTIONS = 2

# How the operator names the workcell's places and parts in Chinese and in other English words.
# Written from the shop floor's point of view, not from the resolver's vocabulary file.
LOCATION_ZH = {
    "bin_reject": "废料箱",
    "tray_storage": "零件托盘",
    "station_inspection": "检测台",
    "fixture_assembly": "装配夹具",
}
LOCATION_SYNONYMS = {
    "bin_reject": ("where the rejects go", "the scrap bin", "the bin for bad parts"),
    "tray_storage": ("the storage tray", "where parts are stored", "the parts pallet"),
    "station_inspection": ("the QC station", "where parts get inspected", "the inspection area"),
    "fixture_assembly": ("the assembly jig", "where things get assembled", "the jig"),
}
COLOR_ZH = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "purple": "紫色",
}
CATEGORY_ZH = {"bolt": "螺栓", "nut": "螺母", "gear": "齿轮", "bracket": "支架"}
CATEGORY_SYNONYMS = {
    "bolt": ("screw", "hex bolt"),
    "nut": ("hex nut", "lock nut"),
    "gear": ("cog", "gear wheel"),
    "bracket": ("angle bracket", "mount"),
}
_GO_EN = ("go to", "move to", "head over to")
# A place or part counts as "on the left" (etc.) only this far beyond the next one.
SIDE_MARGIN_M = 0.05


@dataclass(frozen=True)
class OperatorRequest:
    """One thing an operator says, with what they meant (the ground truth the scripted operator uses)."""

    kind: str
    language: str  # "en" or "zh"
    text: str
    history: tuple[str, ...]  # earlier sentences of the conversation, oldest first
    target_id: str  # the location (move_to) or part (move_to_part) meant
    answer_en: str  # how the operator names the target when asked in English
    answer_zh: str  # ... and in Chinese

    def answer(self, question: str) -> str:
        """The operator's reply to a clarification question, in the question's language."""
        return self.answer_zh if any("\u4e00" <= c <= "\u9fff" for c in question) else self.answer_en


def _typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard slip: a dropped or a doubled letter, or two neighbours swapped (never the first)."""
    i = int(rng.integers(1, len(word) - 1))
    slip = int(rng.integers(3))
    if slip == 0:
        return word[:i] + word[i + 1 :]
    if slip == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _with_typo(text: str, names: str, rng: np.random.Generator) -> str:
    # Short names ("red nut") have no word of four letters: then a three-letter one takes the slip.
    words = [w for w in names.split() if len(w) >= 4] or [w for w in names.split() if len(w) >= 3]
    if not words:
        return text
    victim = words[int(rng.integers(len(words)))]
    return text.replace(victim, _typo(victim, rng), 1)


def _side_of(target_xy: Sequence[float], others: Iterable[Sequence[float]]) -> str | None:
    """Which relative phrase singles out ``target_xy`` among ``others`` (None when none does)."""
    others = [np.asarray(o, dtype=float) for o in others]
    xy = np.asarray(target_xy, dtype=float)
    if not others:
        return None
    if all(xy[1] - o[1] >= SIDE_MARGIN_M for o in others):
        return "on the left"
    if all(o[1] - xy[1] >= SIDE_MARGIN_M for o in others):
        return "on the right"
    if all(np.linalg.norm(o) - np.linalg.norm(xy) >= SIDE_MARGIN_M for o in others):
        return "nearest to the robot"
    if all(np.linalg.norm(xy) - np.linalg.norm(o) >= SIDE_MARGIN_M for o in others):
        return "farthest from the robot"
    return None


def requests_for(task: Task, layout: Layout, seed: int) -> list[OperatorRequest]:
    """One request of every kind in :data:`REQUEST_KINDS` for this layout's task, seeded by ``seed``."""
    if task.name == "move_to":
        return _location_requests(layout.location(task.location_id), layout, seed)
    if task.name == "move_to_part":
        return _part_requests(layout.part(task.part_id), layout, seed)
    raise ValueError(f"the study covers {STUDY_TASKS}, not {task.name!r}")


def _location_requests(target: LocationSpec, layout: Layout, seed: int) -> list[OperatorRequest]:
    rng = np.random.default_rng([seed, 29])
    go = _GO_EN[int(rng.integers(len(_GO_EN)))]
    zh = LOCATION_ZH[target.id]
    others = [loc.xy_m for loc in layout.locations if loc.id != target.id]
    side = _side_of(target.xy_m, others)
    synonyms = LOCATION_SYNONYMS[target.id]
    texts = {
        "canonical": ("en", f"move to the {target.name}", ()),
        "synonym": ("en", f"{go} {synonyms[int(rng.integers(len(synonyms)))]}", ()),
        # Places carry no colour in the scene: the kind of place, without its name, is the attribute.
        "attribute": ("en", f"{go} the {target.category}", ()),
        "relative": ("en", f"{go} the place {side or 'in the middle'}", ()),
        "chinese": ("zh", ("去" if rng.integers(2) else "移动到") + zh, ()),
        "typo": ("en", _with_typo(f"{go} the {target.name}", target.name, rng), ()),
        "history": ("en", "go back there", (f"move to the {target.name}", "go home")),
        "ambiguous": ("en", ("go over there", "move to the target area")[int(rng.integers(2))], ()),
    }
    return [
        OperatorRequest(kind, lang, text, history, target.id, f"the {target.name}", zh)
        for kind, (lang, text, history) in texts.items()
    ]


def _part_requests(target: PartSpec, layout: Layout, seed: int) -> list[OperatorRequest]:
    rng = np.random.default_rng([seed, 30])
    go = _GO_EN[int(rng.integers(len(_GO_EN)))]
    zh = COLOR_ZH[target.color] + CATEGORY_ZH[target.category]
    others = [p for p in layout.parts if p.id != target.id]
    side = _side_of(target.xy_m, [p.xy_m for p in others])
    synonyms = CATEGORY_SYNONYMS[target.category]
    same_category = any(p.category == target.category for p in others)
    texts = {
        "canonical": ("en", f"move to the {target.name}", ()),
        "synonym": ("en", f"{go} the {target.color} {synonyms[int(rng.integers(len(synonyms)))]}", ()),
        "attribute": ("en", f"{go} the {target.color} one", ()),
        "relative": ("en", f"{go} the part {side or 'in the middle'}", ()),
        "chinese": ("zh", f"移动到{zh}那里" if rng.integers(2) else f"去{zh}上方", ()),
        "typo": ("en", _with_typo(f"{go} the {target.name}", target.name, rng), ()),
        "history": ("en", "go back to it", (f"pick up the {target.name}", "go home")),
        "ambiguous": ("en", f"{go} the {target.category}" if same_category else f"{go} the part", ()),
    }
    return [
        OperatorRequest(kind, lang, text, history, target.id, f"the {target.name}", zh)
        for kind, (lang, text, history) in texts.items()
    ]


# ---------------------------------------------------------------------------------------- conditions
@dataclass(frozen=True)
class Condition:
    """What turns a request into the policy's words, and which policy acts on them."""

    words: str  # raw | resolver | canonical | expert
    quantization: str = "none"

    @property
    def name(self) -> str:
        return self.words if self.quantization == "none" else f"{self.words}@{self.quantization}"

    @classmethod
    def parse(cls, name: str) -> Condition:
        words, _, quantization = name.partition("@")
        if words not in BASE_CONDITIONS:
            raise StudyConfigError(
                f"unknown condition {name!r}: conditions are {BASE_CONDITIONS} (+ @8bit/@4bit-nf4)"
            )
        if quantization and (words not in QUANTIZABLE_CONDITIONS or quantization not in QUANTIZATIONS):
            raise StudyConfigError(
                f"{name!r}: only {QUANTIZABLE_CONDITIONS} run quantized, as {QUANTIZATIONS}"
            )
        return cls(words, quantization or "none")


def conditions_for(quantizations: Sequence[str] = ()) -> list[Condition]:
    """The base conditions, then canonical and resolver again for each quantization asked for."""
    out = [Condition(words) for words in BASE_CONDITIONS]
    for q in quantizations:
        if q not in QUANTIZATIONS:
            raise StudyConfigError(f"unknown quantization {q!r}: choose from {QUANTIZATIONS}")
        out += [Condition(words, q) for words in QUANTIZABLE_CONDITIONS]
    return out


@dataclass
class Understanding:
    """What reached the policy for one request under one condition."""

    instruction: str  # "" when nothing was forwarded
    resolution: str  # forwarded | resolved | refused | unresolved
    questions: int = 0
    dialogue: list[str] = field(default_factory=list)


def resolve_with_operator(resolver, request: OperatorRequest, scene) -> Understanding:
    """The resolver on the request; each question answered by the scripted operator (one question each)."""
    result = resolver.resolve(request.text, scene, list(request.history))
    questions, dialogue = 0, []
    while result.status == "clarify" and questions < MAX_QUESTIONS:
        reply = request.answer(result.question)
        dialogue += [f"Q: {result.question}", f"A: {reply}"]
        questions += 1
        result = resolver.answer(result, reply, scene)
    if result.status == "resolved":
        return Understanding(result.instruction, "resolved", questions, dialogue)
    if result.status == "reject":
        return Understanding("", "refused", questions, [*dialogue, f"refused: {result.reason}"])
    return Understanding("", "unresolved", questions, [*dialogue, f"still asking: {result.question}"])


# ------------------------------------------------------------------------------------------ episodes
@dataclass
class StudyEpisode:
    """One request under one condition: what was understood, and what the arm then did."""

    condition: str
    task: str
    seed: int
    kind: str
    language: str
    request: str
    history: list[str]
    target: str
    instruction: str
    resolution: str
    questions: int
    success: bool
    wrong_target: bool
    ended_at: str  # id of the place/part the hand ended over ("" if none)
    steps: int
    wall_time_s: float
    reused: bool = False
    dialogue: list[str] = field(default_factory=list)


def ended_over(cell: Workcell) -> str:
    """The place (move_to) or part (move_to_part) the hand hovers over now, as the task would judge it."""
    task, state, layout = cell.task, cell.state(), cell.layout
    if task.name == "move_to":
        candidates = [Task("move_to", location_id=loc.id) for loc in layout.locations]
        return next((c.location_id for c in candidates if c.success(state, layout)), "")
    candidates = [Task("move_to_part", part_id=p.id) for p in layout.parts]
    return next((c.part_id for c in candidates if c.success(state, layout)), "")


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sensible at 0 and n, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The bound at 0 or n is exactly 0 or 1; rounding would otherwise leave 0.9999999999999999.
    return (0.0 if successes == 0 else centre - half, 1.0 if successes == n else centre + half)


def _group(episodes: Sequence[StudyEpisode]) -> dict:
    n = len(episodes)
    successes = sum(e.success for e in episodes)
    low, high = wilson_interval(successes, n)
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n if n else 0.0,
        "wilson95": [low, high],
        "wrong_target_rate": sum(e.wrong_target for e in episodes) / n if n else 0.0,
        "questions_per_episode": sum(e.questions for e in episodes) / n if n else 0.0,
        "refusals": sum(e.resolution == "refused" for e in episodes),
        "unresolved": sum(e.resolution == "unresolved" for e in episodes),
    }


def summarize(episodes: Sequence[StudyEpisode], conditions: Sequence[str], meta: dict) -> dict:
    """Per condition: success with a 95% Wilson interval, wrong targets, questions, refusals; by kind,
    language and task."""
    out: dict = {"meta": meta, "conditions": {}}
    for name in conditions:
        rows = [e for e in episodes if e.condition == name]
        entry = _group(rows)
        for key in ("kind", "language", "task"):
            values = list(dict.fromkeys(getattr(e, key) for e in rows))
            entry[f"by_{key}"] = {v: _group([e for e in rows if getattr(e, key) == v]) for v in values}
        out["conditions"][name] = entry
    return out


# ---------------------------------------------------------------------------------------- the study
@dataclass
class StudyConfig:
    """One study run: the layouts, the tasks, the conditions and where the results go."""

    model_dir: str | Path
    out_dir: str | Path
    layouts: int = 10  # per task; every layout yields one request of each kind
    seed_start: int = 100000
    tasks: Sequence[str] = STUDY_TASKS
    kinds: Sequence[str] = REQUEST_KINDS
    quantizations: Sequence[str] = ()
    conditions: Sequence[str] | None = None  # names; None: conditions_for(quantizations)
    vocabulary_files: Sequence[str] = ("disambiguation_sim.yaml",)
    precision: str = DEFAULT_PRECISION  # auto: fp32 here (the study runs on the CPU)
    center_crop: bool | None = None  # None: as the checkpoint records
    max_steps: int = MAX_EPISODE_STEPS
    reuse: bool = True
    progress: bool = True


PolicyLoader = Callable[[str], object]


class Study:
    """Runs a :class:`StudyConfig`: episodes to ``episodes.jsonl`` as they finish, then the summary."""

    def __init__(self, config: StudyConfig, policy_loader: PolicyLoader | None = None) -> None:
        from vla_ros.disambiguation import InstructionResolver, load_vocabulary

        self.config = config
        self.out_dir = Path(config.out_dir)
        self.conditions = (
            [Condition.parse(c) for c in config.conditions]
            if config.conditions is not None
            else conditions_for(config.quantizations)
        )
        unknown = sorted(set(config.kinds) - set(REQUEST_KINDS)) + sorted(
            set(config.tasks) - set(STUDY_TASKS)
        )
        if unknown:
            raise StudyConfigError(
                f"unknown request kinds or tasks {unknown}: kinds {REQUEST_KINDS}, tasks {STUDY_TASKS}"
            )
        self.vocabulary = load_vocabulary(extra_paths=list(config.vocabulary_files))
        self.resolver = InstructionResolver(self.vocabulary)
        self._load_policy = policy_loader or self._load_vla
        self._policies: dict[str, object] = {}
        self._rollouts: dict[tuple, tuple[bool, str, int]] = {}
        self.episodes: list[StudyEpisode] = []

    # --- policies --------------------------------------------------------------------------------
    def _load_vla(self, quantization: str):
        from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

        return VLAPolicy(
            PolicyConfig(
                self.config.model_dir,
                precision=self.config.precision,
                quantization=quantization,
                center_crop=self.config.center_crop,
                constrain_to_action_tokens=True,
            )
        )

    def _policy(self, condition: Condition, cell: Workcell):
        from vla_ros.sim import ScriptedExpert

        key = "expert" if condition.words == "expert" else condition.quantization
        if key not in self._policies:
            self._policies[key] = ScriptedExpert(cell) if key == "expert" else self._load_policy(key)
        return self._policies[key]

    @property
    def wording(self) -> dict[str, str]:
        """The forwarded-instruction templates the resolver used (the vocabulary's ``instructions``)."""
        return {task: self.vocabulary.instructions.get(task, "") for task in ("move_to", "pick_place")}

    # --- running ---------------------------------------------------------------------------------
    def _understand(
        self, condition: Condition, request: OperatorRequest, canonical: str, scene
    ) -> Understanding:
        if condition.words == "raw":
            return Understanding(request.text, "forwarded")
        if condition.words in ("canonical", "expert"):
            return Understanding(canonical, "forwarded")
        return resolve_with_operator(self.resolver, request, scene)

    def _episode(self, cell: Workcell, condition: Condition, task: str, seed: int, request, canonical, scene):
        from vla_ros.sim import run_episode

        understood = self._understand(condition, request, canonical, scene)
        start = time.perf_counter()
        success, ended, steps, reused = False, "", 0, False
        if understood.instruction:
            words = "" if condition.words == "expert" else understood.instruction
            key = (condition.words == "expert", condition.quantization, seed, task, words)
            if self.config.reuse and key in self._rollouts:
                success, ended, steps = self._rollouts[key]
                reused = True
            else:
                policy = self._policy(condition, cell)
                result = run_episode(
                    cell,
                    policy,
                    seed,
                    task,
                    self.config.max_steps,
                    render=condition.words != "expert",
                    instruction=understood.instruction,
                )
                success, ended, steps = result.success, ended_over(cell), result.steps
                self._rollouts[key] = (success, ended, steps)
        return StudyEpisode(
            condition=condition.name,
            task=task,
            seed=seed,
            kind=request.kind,
            language=request.language,
            request=request.text,
            history=list(request.history),
            target=request.target_id,
            instruction=understood.instruction,
            resolution=understood.resolution,
            questions=understood.questions,
            success=success,
            wrong_target=bool(ended) and ended != request.target_id,
            ended_at=ended,
            steps=steps,
            wall_time_s=round(time.perf_counter() - start, 3),
            reused=reused,
            dialogue=understood.dialogue,
        )

    def plan(self) -> list[tuple[str, int]]:
        """(task, seed) pairs in run order: layouts interleaved over tasks, so a cut-short run is balanced."""
        seeds = range(self.config.seed_start, self.config.seed_start + self.config.layouts)
        return [(task, seed) for seed in seeds for task in self.config.tasks]

    def run(self) -> dict:
        """Run every episode (Ctrl-C stops early and keeps what finished); returns the summary."""
        from vla_ros.disambiguation import Scene

        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "episodes.jsonl"
        log_path.write_text("")
        total = len(self.plan()) * len(self.config.kinds) * len(self.conditions)
        bar = None
        if self.config.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="study", unit="episode")
        started = time.perf_counter()
        interrupted = False
        from vla_ros.sim import Workcell, workcell_config

        with Workcell(workcell_config(224, None)) as cell, log_path.open("a", encoding="utf-8") as log:
            try:
                for task, seed in self.plan():
                    canonical = cell.reset(seed, task)
                    scene = Scene.from_dict(cell.scene())
                    requests = [
                        r for r in requests_for(cell.task, cell.layout, seed) if r.kind in self.config.kinds
                    ]
                    for condition in self.conditions:
                        for request in requests:
                            episode = self._episode(cell, condition, task, seed, request, canonical, scene)
                            self.episodes.append(episode)
                            log.write(json.dumps(asdict(episode), ensure_ascii=False) + "\n")
                            log.flush()
                            if bar is not None:
                                bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if bar is not None:
                    bar.close()
        return self.write_outputs(time.perf_counter() - started, interrupted)

    # --- outputs ---------------------------------------------------------------------------------
    def meta(self, wall_time_s: float, interrupted: bool) -> dict:
        c = self.config
        return {
            "model": str(c.model_dir),
            "precision": resolve_precision(c.precision, "cpu"),
            "tasks": list(c.tasks),
            "kinds": list(c.kinds),
            "layouts_per_task": c.layouts,
            "seeds": [c.seed_start, c.seed_start + c.layouts - 1],
            "max_steps": c.max_steps,
            "vocabulary_files": list(c.vocabulary_files),
            "forwarded_wording": self.wording,
            "max_questions": MAX_QUESTIONS,
            "reuse_identical_rollouts": c.reuse,
            "rollouts_run": len(self._rollouts),
            "episodes": len(self.episodes),
            "wall_time_s": round(wall_time_s, 1),
            "interrupted": interrupted,
        }

    def write_outputs(self, wall_time_s: float, interrupted: bool) -> dict:
        summary = summarize(
            self.episodes, [c.name for c in self.conditions], self.meta(wall_time_s, interrupted)
        )
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        if self.episodes:
            plot_success(summary, self.out_dir / "success.png")
        (self.out_dir / "report.md").write_text(format_report(summary), encoding="utf-8")
        return summary


def plot_success(summary: dict, path: Path) -> Path:
    """Bar plot: success per condition with its 95% Wilson interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["conditions"])
    rates = [100 * summary["conditions"][n]["success_rate"] for n in names]
    bounds = [summary["conditions"][n]["wilson95"] for n in names]
    low = [max(0.0, r - 100 * b[0]) for r, b in zip(rates, bounds, strict=True)]
    high = [max(0.0, 100 * b[1] - r) for r, b in zip(rates, bounds, strict=True)]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    ax.bar(names, rates, yerr=[low, high], capsize=4, color="#4c72b0")
    for i, n in enumerate(names):
        ax.text(i, 2, f"n={summary['conditions'][n]['episodes']}", ha="center", color="white", fontsize=8)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Closed-loop success per condition (95% Wilson intervals)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(summary: dict) -> str:
    """Markdown: one row per condition (success with interval, wrong targets, questions, refusals)."""
    lines = [
        "| condition | episodes | success | 95% Wilson | wrong target | questions/ep | refused "
        "| unresolved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in summary["conditions"].items():
        lo, hi = c["wilson95"]
        lines.append(
            f"| {name} | {c['episodes']} | {c['success_rate']:.0%} ({c['successes']}) | {lo:.0%}-{hi:.0%} | "
            f"{c['wrong_target_rate']:.0%} | {c['questions_per_episode']:.2f} | {c['refusals']} | "
            f"{c['unresolved']} |"
        )
    return "\n".join(lines)


def format_breakdown(summary: dict, key: str) -> str:
    """Markdown: success per condition (rows) and kind/language/task (columns)."""
    conditions = summary["conditions"]
    columns = list(dict.fromkeys(v for c in conditions.values() for v in c[f"by_{key}"]))
    lines = ["| condition | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, c in conditions.items():
        cells = []
        for v in columns:
            g = c[f"by_{key}"].get(v)
            cells.append(f"{g['success_rate']:.0%} ({g['successes']}/{g['episodes']})" if g else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(summary: dict) -> str:
    """The one-page Markdown report: what ran, the wording forwarded, the table, the breakdowns."""
    m = summary["meta"]
    wording = ", ".join(f"{k}: `{v}`" for k, v in m["forwarded_wording"].items())
    return "\n".join(
        [
            "# Disambiguation study",
            "",
            f"Model `{m['model']}` ({m['precision']}); tasks {', '.join(m['tasks'])}; "
            f"{m['layouts_per_task']} held-out layouts per task (seeds {m['seeds'][0]}-{m['seeds'][1]}), one "
            f"request of each kind per layout; {m['episodes']} episodes, {m['rollouts_run']} closed-loop "
            "rollouts run "
            f"(identical rollouts reused: {m['reuse_identical_rollouts']}); {m['wall_time_s']:.0f} s"
            + (" (interrupted: partial)" if m["interrupted"] else "")
            + ".",
            "",
            f"Forwarded wording (vocabulary {', '.join(m['vocabulary_files']) or 'default'}): {wording}. "
            f"The scripted operator answers up to {m['max_questions']} questions per episode from the "
            "ground truth, in the question's language.",
            "",
            format_table(summary),
            "",
            "![success per condition](success.png)",
            "",
            "## By request kind",
            "",
            format_breakdown(summary, "kind"),
            "",
            "## By language and task",
            "",
            format_breakdown(summary, "language"),
            "",
            format_breakdown(summary, "task"),
            "",
        ]
    )
