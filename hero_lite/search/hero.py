"""The HERO search: a DDPG agent picks bits point by point, the simulator prices each policy.

Run folder (`hero-lite search ... --out DIR`):
- `config.json`   the resolved SearchConfig;
- `episodes.jsonl` one JSON object per finished episode (episode, policy, reward, psnr,
  latency_ms, ...), appended and flushed as each episode ends, so a kill loses at most the
  running episode;
- `agent.h5`      agent and loop state after the last logged episode (for `--resume`);
- `best_policy.json`, `summary.json`, `quantized.h5` at the end: the final policy after a longer
  fine-tune, scored on the test views. The final policy is chosen among the few distinct
  budget-meeting policies with the highest episode reward, one of them among the largest
  (`final_candidates`): each gets the final fine-tune and is scored again on every validation view
  at full resolution, and the one with the highest reward there wins. One short fine-tune on a few
  small views ranks close policies unreliably, and favours small ones; the test views still never
  take part in the choice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hero_lite.accel import load_config
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import strict_from_dict
from hero_lite.nerf.evaluate import evaluate
from hero_lite.quant.export import save_quantized
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import QuantPolicy, model_signature, uniform_policy
from hero_lite.quant.qat import quantization_aware_training
from hero_lite.rl.ddpg import DDPGAgent, DDPGConfig
from hero_lite.rl.loop import EpisodeRecord, LoopState, load_checkpoint as load_agent_checkpoint, run_episodes
from hero_lite.runfolder import file_digest, folder_digest, write_atomically, write_json_atomically
from hero_lite.scenes import load_scene
from hero_lite.search.budget import Budget, check_reachable
from hero_lite.search.cost import policy_cost
from hero_lite.search.env import QuantEnv, RewardConfig, freeze_points, policy_factory_for, start_observations
from hero_lite.search.evaluator import PolicyEvaluator, downscale_views
from hero_lite.search.heuristic import heuristic_snapped_bits
from hero_lite.search.widths import with_hardware_widths
from hero_lite.search.workload import trace_views, workload_from_trace


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search, with defaults sized for ~10 minutes on 2 cores.

    episodes : DDPG episodes (HAQ: 600; hero-lite: 100, noise decay scaled to it).
    point_set : 'hero' (per-level hash points) or 'caq'.
    accel : preset name or TOML path; area_mode : None (the preset's) | 'fixed' | 'fit'.
    budgets : metric -> limit, 'Nx' relative to the reference policy or an absolute number
        (latency_ms in ms, area_mm2, energy_uj, model_bytes). Default 0.8x latency: on the `edge`
        preset the bundled scenes bottom out near 0.73x (every point at 2 bits; the PE array gains
        nothing below 4 bits), so HERO's 0.6x would be out of reach.
    reference_bits : the reference policy, uniform bits everywhere (HAQ: 8).
    qat_steps, qat_samples : per-episode fine-tune (steps, samples per step).
    final_qat_steps : fine-tune of the final policy before the test-view report.
    final_candidates : how many of the best distinct policies (by episode reward, one of them
        among the largest: `final_candidates`) get the final fine-tune and a second validation
        score before one is picked (1: HAQ's choice, the best episode alone).
    scene_downscale : every split of the scene is read at 1/scene_downscale of its image size
        (`hero_lite.scenes.load_scene`'s downscale: area average, focal / N); e.g. 8 for
        NeRF-synthetic's 800x800 views.
    val_views, val_downscale : validation views scored per episode, and their further downscale
        factor (on top of scene_downscale).
    reward : RewardConfig fields; ddpg : DDPGConfig fields (episodes is taken from here).
    start : the actor's policy before the first update: 'reference' (fitted to pick the reference
        policy's bits at every step, `DDPGAgent.imitate`), 'heuristic' (fitted to the three-rule
        hand policy at the accelerator's widths, `heuristic.heuristic_snapped_bits`; HERO's point
        set only) or 'random' (HAQ: a freshly initialised actor, whose sigmoid output near 0.5 picks
        mid-range bits: 9-bit hash levels, 5-bit MLP). Warm-up episodes are uniform random either way.
        Under a budget at the heuristic's own cost the reference start begins far over budget, so
        the wall, not the actor, picks which points lose bits; the heuristic start begins inside it.
    frozen_bits : point name or kind ('hash_level', 'weight', 'activation') -> bits: those points
        keep these bits in every episode (`env.freeze_points`: the agent's step cannot change them,
        the budget wall never lowers them, the cheapest policy counts them at these bits); a name
        overrides its kind. E.g. {"hash_level": 8} (the `hero_hash8` method of `compare`).
    widths : 'all' (HAQ: every width of a point's range) or 'hardware': the agent and the budget
        wall pick only widths the accelerator runs without waste (`widths.hardware_widths`: on
        `edge` 2, 4, 8 for the MLP and 2, 4, 8, 16 for hash levels), so no step spends quality on a
        width that costs what the next wider one costs.
    full_size : price every policy on Instant-NGP's full-size grid (T = 2^19, N_max = 2048;
        `workload.FULL_SIZE_GRID`): the model's own samples, the big tables' bytes, levels and
        DRAM traffic. For accelerators sized for the paper-scale tables (`edge_fulltables`); the
        quality is still the trained model's.
    seed : run seed.
    """

    episodes: int = 100
    point_set: str = "hero"
    accel: str = "edge"
    area_mode: str | None = None
    budgets: dict = field(default_factory=lambda: {"latency_ms": "0.8x"})
    reference_bits: int = 8
    qat_steps: int = 30
    qat_samples: int = 1 << 15
    final_qat_steps: int = 300
    final_candidates: int = 3
    scene_downscale: int = 1
    val_views: int = 4
    val_downscale: int = 2
    reward: dict = field(default_factory=dict)
    ddpg: dict = field(default_factory=dict)
    start: str = "reference"
    frozen_bits: dict = field(default_factory=dict)
    widths: str = "all"
    full_size: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for key, kind in (("budgets", dict), ("reward", dict), ("ddpg", dict), ("frozen_bits", dict),
                          ("point_set", str), ("accel", str), ("seed", int), ("reference_bits", int)):
            if not isinstance(getattr(self, key), kind) or isinstance(getattr(self, key), bool):
                raise ValueError(f"search {key} = {getattr(self, key)!r}; valid: a {kind.__name__}")
        for key in ("episodes", "scene_downscale", "val_views", "val_downscale", "qat_samples", "final_candidates"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"search {key} = {value!r}; valid: integer >= 1")
        for key in ("qat_steps", "final_qat_steps"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                raise ValueError(f"search {key} = {getattr(self, key)!r}; valid: integer >= 0")
        if self.point_set not in ("hero", "caq"):
            raise ValueError(f"search point_set = {self.point_set!r}; valid: hero, caq")
        if self.area_mode not in (None, "fixed", "fit"):
            raise ValueError(f"search area_mode = {self.area_mode!r}; valid: fixed, fit")
        if self.widths not in ("all", "hardware"):
            raise ValueError(f"search widths = {self.widths!r}; valid: all, hardware")
        if not isinstance(self.full_size, bool):
            raise ValueError(f"search full_size = {self.full_size!r}; valid: true, false")
        if self.start not in ("reference", "heuristic", "random"):
            raise ValueError(f"search start = {self.start!r}; valid: reference, heuristic, random")
        if self.start == "heuristic" and self.point_set != "hero":
            raise ValueError("search start = 'heuristic' needs point_set = 'hero' (the hand policy's points)")
        for name, bits in self.frozen_bits.items():
            if not isinstance(name, str) or not isinstance(bits, int) or isinstance(bits, bool):
                raise ValueError(f"search frozen_bits {name!r} = {bits!r}; valid: a point name or kind (hash_level, "
                                 "weight, activation) -> integer bits")
        Budget.resolve(self.budgets, {m: 1.0 for m in ("latency_ms", "area_mm2", "energy_uj", "model_bytes")})
        self.reward_config()
        self.ddpg_config()

    def reward_config(self) -> RewardConfig:
        """The RewardConfig of `reward` (unknown keys rejected, listing the valid ones)."""
        return strict_from_dict(RewardConfig, self.reward, "search reward")

    def ddpg_config(self) -> DDPGConfig:
        """DDPGConfig for this run: HAQ's agent with three measured changes, each overridable in `ddpg`.

        - warm-up: HAQ's 20 episodes, at most a fifth of the run;
        - actor learning rate 1e-5, a tenth of HAQ's: with the reference start, HAQ's rate lets the
          actor drift to mid-range bits within ~15 episodes of the warm-up's end, while at 1e-5 it
          stays near the reference and the decaying noise explores around it (headline: 6 of 6 seeds
          matched CAQ, against 2 of 6 at 1e-4);
        - the episode critic Q(a_1..a_T) instead of HAQ's per-step Q(s_t, a_t): median 0.98 of the
          optimum on the synthetic environment against 0.77 (tests/rl/test_synthetic.py), a higher
          test PSNR in most paired searches and, with the re-scored final choice, every headline seed
          matched CAQ (README, Results). `ddpg={"critic": "step"}` restores HAQ's critic.
        """
        warmup = min(20, max(1, self.episodes // 5))
        return DDPGConfig.from_dict({"warmup_episodes": warmup, "lr_actor": 1e-5, "critic": "episode", **self.ddpg,
                                     "episodes": self.episodes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SearchConfig":
        return strict_from_dict(cls, data, "search config")


def start_bits(setup: SearchSetup, config: SearchConfig) -> dict[str, int] | None:
    """The bits the actor is fitted to before the first update (`config.start`): the reference
    policy's, the heuristic's at the search's accelerator widths, or None (a random start)."""
    if config.start == "reference":
        return dict(setup.reference.bits)
    if config.start == "heuristic":
        return heuristic_snapped_bits(setup.model.config, setup.accel)
    return None


def make_agent(env, config: SearchConfig, bits: dict[str, int] | None) -> DDPGAgent:
    """A fresh agent for `env` (QuantEnv or its proxy variant), its actor fitted to pick `bits`
    (`start_bits`; None: left at its random initialisation)."""
    agent = DDPGAgent(env.n_obs, config.ddpg_config(), np.random.default_rng(config.seed),
                      steps_per_episode=len(env.points))
    if bits is not None:
        agent.imitate(*start_observations(env, bits))
    return agent


def _read_log(path: str) -> list[dict]:
    """The episodes of a search log; a last line without its newline (a kill while it was being
    written) is left out."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1]:  # unfinished last line
        lines = lines[:-1]
    episodes = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                episodes.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}, line {number}: not a JSON episode record") from None
    return episodes


def _episode_line(record: EpisodeRecord) -> dict:
    info = record.info
    return {
        "episode": record.episode,
        "reward": record.reward,
        "psnr": info.get("psnr"),
        "psnr_drop": info.get("psnr_drop"),
        "latency_ms": info.get("latency_ms"),
        "area_mm2": info.get("area_mm2"),
        "energy_uj": info.get("energy_uj"),
        "model_bytes": info.get("model_bytes"),
        "cost_efficiency": info.get("cost_efficiency"),
        "budget_met": info.get("budget_met"),
        "wall_decrements": info.get("wall_decrements"),
        "exploration": record.exploration,
        "sigma": record.sigma,
        "policy": info.get("policy"),
        "agent_bits": info.get("agent_bits"),
        "env_seconds": record.env_seconds,
        "agent_seconds": record.agent_seconds,
    }


@dataclass
class SearchSetup:
    """Everything a search (and the baselines that share its evaluation) needs."""

    model: Any
    train_scene: Any
    val_scene: Any  # the search's few validation views, downscaled
    val_full: Any  # every validation view at full resolution (the final choice)
    test_scene: Any
    evaluator: PolicyEvaluator
    points: list
    reference: QuantPolicy
    budget: Budget
    accel: Any
    traces: list = field(default_factory=list)
    floor_cost: dict = field(default_factory=dict)  # every point at its minimum bits (cost frame)
    full_size: bool = False  # priced on Instant-NGP's full-size grid (SearchConfig.full_size)

    def frame_cost(self, bits: dict, point_set: str) -> dict:
        """Event-simulated cost of `bits` on the search's cost frame (validation view 0) for a policy
        of either point set: latency_ms, area_mm2, energy_uj, model_bytes, cost_efficiency."""
        workloads = [workload_from_trace(t, self.model.config, point_set, self.full_size) for t in self.traces]
        cost = policy_cost(workloads, bits, self.accel, area_mode=self.evaluator.area_mode)
        return {"latency_ms": cost.latency_ms, "area_mm2": cost.area_mm2, "energy_uj": cost.energy_uj,
                "model_bytes": cost.model_bytes, "cost_efficiency": cost.cost_efficiency}


def search_points(model_config, config: SearchConfig, accel) -> list:
    """The points a search walks: `config.point_set` of `model_config`, frozen as `config.frozen_bits`
    says, narrowed to `accel`'s widths when `config.widths` is 'hardware'."""
    points = freeze_points(quant_points(model_config, config.point_set), config.frozen_bits, config.point_set)
    return with_hardware_widths(points, accel) if config.widths == "hardware" else points


def prepare(checkpoint: str, scene_dir: str, config: SearchConfig) -> SearchSetup:
    """Load the model and views (at `config.scene_downscale`), trace the cost frame (validation
    view 0), build the evaluator. The points carry `config.frozen_bits` (`env.freeze_points`) and,
    with `config.widths = 'hardware'`, the accelerator's widths (`widths.with_hardware_widths`)."""
    model, _ = load_checkpoint(checkpoint)
    train_scene = load_scene(scene_dir, "train", config.scene_downscale)
    val_full = load_scene(scene_dir, "val", config.scene_downscale)
    test_scene = load_scene(scene_dir, "test", config.scene_downscale)
    val_scene = downscale_views(val_full, config.val_downscale, min(config.val_views, val_full.n_views))
    accel = load_config(config.accel)
    traces = trace_views(model, val_full, (0,))
    workloads = [workload_from_trace(t, model.config, config.point_set, config.full_size) for t in traces]
    points = search_points(model.config, config, accel)
    reference = uniform_policy(model.config, config.reference_bits, min(config.reference_bits, 8), config.point_set)
    reference_cost = policy_cost(workloads, reference, accel, area_mode=config.area_mode).to_dict()
    budget = Budget.resolve(config.budgets, reference_cost)
    # the cheapest policy the budget wall can reach: if it misses the budget, no episode can meet it
    floor_cost = policy_cost(workloads, {p.name: p.min_bits for p in points}, accel, area_mode=config.area_mode).to_dict()
    check_reachable(budget, floor_cost, reference_cost, accel.name)
    evaluator = PolicyEvaluator(model, train_scene, val_scene, workloads, accel, config.qat_steps,
                                config.qat_samples, config.seed, area_mode=config.area_mode)
    return SearchSetup(model, train_scene, val_scene, val_full, test_scene, evaluator, points, reference, budget, accel,
                       traces, floor_cost, config.full_size)


def final_finetune(setup: SearchSetup, policy: QuantPolicy, config: SearchConfig) -> tuple[Any, FakeQuantHooks]:
    """The final fine-tune of `policy` (`config.final_qat_steps`, seed `config.seed + 1`) on a copy
    of the fp32 model; returns (model, frozen hooks)."""
    model = setup.model.copy()
    hooks = FakeQuantHooks(model, policy, setup.evaluator.ranges)
    rng = np.random.default_rng(config.seed + 1)
    quantization_aware_training(model, setup.train_scene, hooks, config.final_qat_steps, rng)
    return model, hooks


def final_report(setup: SearchSetup, policy: QuantPolicy, config: SearchConfig, out_dir: str | None,
                 extra: dict | None = None, tuned: tuple | None = None) -> dict:
    """Longer fine-tune of `policy` (or `tuned`, its result from `final_finetune`), test PSNR, event
    simulation of test view 0 (both area modes)."""
    model, hooks = tuned if tuned is not None else final_finetune(setup, policy, config)
    test = evaluate(model, setup.test_scene, hooks=hooks, with_ssim=False)
    fp32_test = evaluate(setup.model, setup.test_scene, with_ssim=False)
    traces = trace_views(model, setup.test_scene, (0,), hooks=hooks)
    workloads = [workload_from_trace(t, model.config, config.point_set, setup.full_size) for t in traces]
    cost = policy_cost(workloads, policy, setup.accel, area_mode=config.area_mode)
    fit = policy_cost(workloads, policy, setup.accel, area_mode="fit")
    summary = {
        "psnr": test.psnr,
        "fp32_psnr": fp32_test.psnr,
        "psnr_drop": fp32_test.psnr - test.psnr,
        "latency_ms": cost.latency_ms,
        "fps": cost.fps,
        "area_mm2": cost.area_mm2,
        "cost_efficiency": cost.cost_efficiency,
        "energy_uj": cost.energy_uj,
        "model_bytes": cost.model_bytes,
        "area_mm2_fit": fit.area_mm2,
        "cost_efficiency_fit": fit.cost_efficiency,
        "latency_ms_fit": fit.latency_ms,
        "final_qat_steps": config.final_qat_steps,
        "policy": policy.to_dict(),
        "accel": setup.accel.name,
        "unit_shares": cost.reports[0].unit_shares(),
        **(extra or {}),
    }
    if out_dir is not None:
        policy.save(os.path.join(out_dir, "best_policy.json"))
        save_quantized(os.path.join(out_dir, "quantized.h5"), model, hooks, {"policy_source": "hero search"})
    return summary


def final_candidates(log: list[dict], count: int) -> list[dict]:
    """The `count` highest-reward distinct policies for the final fine-tune, with one large policy
    among them.

    Ranked among the lines that met the budget (all lines if none did); ties: earlier episode first.
    If none of the top `count` lies in the largest 1/`count` of the ranked policies' model-size
    range, the best policy that does takes the last place. The short per-episode fine-tune favours
    small policies that the long final one shows to lose quality, so the top few by reward alone
    can all be small, and then the final fine-tune never sees a budget-sized policy. Returned in
    reward order. Each line needs episode, reward, policy, budget_met and model_bytes (bytes).
    """
    ranked = sorted([e for e in log if e["budget_met"]] or log, key=lambda e: (-e["reward"], e["episode"]))
    distinct: dict[tuple, dict] = {}
    for line in ranked:
        distinct.setdefault(tuple(sorted(line["policy"].items())), line)
    lines = list(distinct.values())  # the best line of each policy, in reward order
    picked = lines[:count]
    if count > 1 and len(lines) > count:
        sizes = [e["model_bytes"] for e in lines]
        large = max(sizes) - (max(sizes) - min(sizes)) / count
        if all(e["model_bytes"] < large for e in picked):
            picked[-1] = next(e for e in lines if e["model_bytes"] >= large)
    return picked


def pick_final(setup: SearchSetup, candidates: list[dict], config: SearchConfig, signature: str,
               progress: Callable[[int, int, dict], None] | None = None) -> tuple[dict, tuple | None, list[dict]]:
    """The candidate with the highest reward after the final fine-tune, on every validation view at
    full resolution. Returns (its log line, its (model, hooks) or None for a single candidate, one
    row per candidate: episode, search reward and PSNR, final validation PSNR (dB) and reward).
    `progress(index, count, line)` is called before each candidate's fine-tune."""
    if len(candidates) == 1:
        return candidates[0], None, []
    reward = config.reward_config()
    reference_cost = setup.evaluator.cost(setup.reference)
    fp32_psnr = evaluate(setup.model, setup.val_full, with_ssim=False).psnr
    rows, best, best_tuned, best_reward = [], None, None, -np.inf
    for index, line in enumerate(candidates):
        if progress is not None:
            progress(index, len(candidates), line)
        policy = QuantPolicy.from_dict({"set": config.point_set, "model": signature, "points": line["policy"]},
                                       setup.model.config)
        model, hooks = final_finetune(setup, policy, config)
        psnr = evaluate(model, setup.val_full, hooks=hooks, with_ssim=False).psnr
        value = reward.reward(fp32_psnr - psnr, setup.evaluator.cost(policy), reference_cost)
        rows.append({"episode": line["episode"], "search_reward": line["reward"], "search_val_psnr": line["psnr"],
                     "final_val_psnr": psnr, "final_reward": value})
        if value > best_reward:  # ties keep the higher search reward
            best, best_tuned, best_reward = line, (model, hooks), value
    return best, best_tuned, rows


def input_digests(checkpoint: str, scene_dir: str, config: SearchConfig) -> dict[str, str]:
    """SHA-256 digests of what a search stands on: the scene's files, the checkpoint's bytes and
    the resolved accelerator config (a preset or a TOML file)."""
    accel = json.dumps(load_config(config.accel).to_dict(), sort_keys=True).encode()
    return {"scene": folder_digest(scene_dir), "checkpoint": file_digest(checkpoint),
            "accel": hashlib.sha256(accel).hexdigest()}


def changed_settings(saved: dict, config: SearchConfig) -> list[str]:
    """The settings of `config` that differ from a run folder's recorded ones, as "key saved -> now".

    A setting missing from `saved` (a folder started before the setting existed) counts as its
    default, so such a folder still resumes with the default.
    """
    defaults, now = SearchConfig().to_dict(), config.to_dict()
    changed = [f"{key} {saved.get(key, defaults[key])!r} -> {value!r}" for key, value in now.items()
               if saved.get(key, defaults[key]) != value]
    return changed + [f"{key} {saved[key]!r} -> (unknown)" for key in saved if key not in now]


def check_resumable(out_dir: str, config: SearchConfig, checkpoint: str, inputs: dict[str, str]) -> None:
    """Raise ValueError unless the search in `out_dir` can be continued with these settings and
    inputs: same SearchConfig (`changed_settings`; scene_downscale included) and checkpoint path,
    unchanged scene, checkpoint and accelerator (digests recorded at the start), and a log that
    holds every episode the saved agent learnt from."""
    config_path = os.path.join(out_dir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"nothing to resume: {config_path} not found")
    with open(config_path) as f:
        saved = json.load(f)
    changed = changed_settings(saved.get("search") or {}, config)
    if changed:
        raise ValueError(f"--resume: {out_dir} was started with other settings ({'; '.join(changed)}; see "
                         f"{config_path}); resume with the same settings or start a new search with another --out")
    if saved.get("checkpoint") != os.path.abspath(checkpoint):
        raise ValueError(f"--resume: {out_dir} was started with checkpoint {saved.get('checkpoint')}, not "
                         f"{os.path.abspath(checkpoint)}")
    changed = [name for name, digest in inputs.items() if saved.get("inputs", {}).get(name) != digest]
    if changed:
        what = {"scene": "scene's files", "checkpoint": "checkpoint", "accel": "accelerator config"}
        raise ValueError(f"--resume: the {', the '.join(what[c] for c in changed)} changed since {out_dir} was "
                         f"started; start a new search with another --out")
    agent_path = os.path.join(out_dir, "agent.h5")
    if os.path.exists(agent_path):
        done = load_agent_checkpoint(agent_path)[1].next_episode
        log_path = os.path.join(out_dir, "episodes.jsonl")
        logged = len(_read_log(log_path)) if os.path.exists(log_path) else 0
        if logged < done:
            raise ValueError(f"--resume: {log_path} holds {logged} episodes but the saved agent learnt from {done} "
                             "(deleted or truncated log); start a new search with another --out")


def write_lines_atomically(path: str, lines: list[dict]) -> None:
    """Write one JSON object per line to `path` (temp file, then rename)."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)

    write_atomically(path, write)


def hero_search(checkpoint: str, scene_dir: str, out_dir: str, config: SearchConfig, resume: bool = False,
                progress: Callable[[int, EpisodeRecord], None] | None = None,
                final_progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Run (or resume) a search and write the run folder; returns the summary dict.
    `progress(episode, record)` follows the episodes, `final_progress` the final choice (`pick_final`)."""
    start = time.perf_counter()
    log_path = os.path.join(out_dir, "episodes.jsonl")
    agent_path = os.path.join(out_dir, "agent.h5")
    config_path = os.path.join(out_dir, "config.json")
    inputs = input_digests(checkpoint, scene_dir, config)
    if resume:
        check_resumable(out_dir, config, checkpoint, inputs)
    elif os.path.exists(log_path) and _read_log(log_path):
        raise ValueError(f"{out_dir} already holds a search (episodes.jsonl); use --resume or another --out")

    setup = prepare(checkpoint, scene_dir, config)
    os.makedirs(out_dir, exist_ok=True)
    signature = model_signature(setup.model.config)
    env = QuantEnv(setup.points, setup.evaluator, setup.budget, setup.reference.bits, config.reward_config(),
                   policy_factory_for(config.point_set, signature))
    if resume and os.path.exists(agent_path):
        agent, state = load_agent_checkpoint(agent_path)
        lines = _read_log(log_path)[: state.next_episode]
        write_lines_atomically(log_path, lines)
    else:  # a new search, or one killed before its first saved episode: start at episode 0
        write_json_atomically(config_path, {"search": config.to_dict(), "checkpoint": os.path.abspath(checkpoint),
                                            "scene": os.path.abspath(scene_dir), "inputs": inputs,
                                            "budget": setup.budget.to_dict(),
                                            "reference_cost": setup.evaluator.cost(setup.reference)})
        agent = make_agent(env, config, start_bits(setup, config))
        state = LoopState()
        write_lines_atomically(log_path, [])

    def on_episode_end(record: EpisodeRecord) -> None:
        with open(log_path, "a") as f:
            f.write(json.dumps(_episode_line(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    run_episodes(env, agent, config.episodes, state=state, env_seed=config.seed, checkpoint_path=agent_path,
                 progress=progress, on_episode_end=on_episode_end)
    log = _read_log(log_path)
    met = [e for e in log if e["budget_met"]]
    candidates = final_candidates(log, config.final_candidates)
    best, tuned, rescored = pick_final(setup, candidates, config, signature, final_progress)
    policy = QuantPolicy.from_dict({"set": config.point_set, "model": signature, "points": best["policy"]},
                                   setup.model.config)
    summary = final_report(setup, policy, config, out_dir, tuned=tuned, extra={
        "episodes": len(log),
        "best_episode": best["episode"],
        "val_psnr": best["psnr"],
        "final_candidates": rescored,
        "budget": setup.budget.to_dict(),
        "budget_met": bool(met) and setup.budget.met({**setup.evaluator.cost(policy)}),
        "budget_floor": {m: setup.floor_cost[m] for m in ("latency_ms", "area_mm2", "energy_uj", "model_bytes")},
        "reference": {"bits": config.reference_bits, **{k: v for k, v in setup.evaluator.cost(setup.reference).items()
                                                        if k != "unit_shares"}},
        "search_seconds": time.perf_counter() - start,
    })
    write_json_atomically(os.path.join(out_dir, "summary.json"), summary)
    return summary
