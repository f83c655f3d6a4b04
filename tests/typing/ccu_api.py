"""Exercises the CCU public API under ``mypy --strict`` (run by scripts/check); never executed by pytest."""

from __future__ import annotations

import gs_hooks
from gs_hooks import CcuConfig, CcuOutcome, CcuProblem, CcuReporter, CcuSample, CcuSampleRow, CcuSpool, Config


def on_ccu_problem(problem: CcuProblem) -> None:
    code: int | None = problem.code
    print(problem.server, problem.date, problem.user, problem.reqkey, code, problem.outcome, problem.message)


async def on_ccu_problem_async(problem: CcuProblem) -> None:
    print(problem.message)


async def main() -> None:
    config = Config(ccu=CcuConfig(url="http://127.0.0.1:8700/modules/gameuser/currentuser/", game="g_KR"))
    hooks = gs_hooks.setup(config, on_ccu_problem=on_ccu_problem)
    gs_hooks.setup(config, on_ccu_problem=on_ccu_problem_async)
    async with hooks:
        hooks.saw_user("player-1")
        hooks.saw_user("player-2", "1")
        resent: int = await hooks.resend_refused()
        reporter = hooks.ccu
        if isinstance(reporter, CcuReporter):
            spool: CcuSpool = reporter.spool
            rows: list[CcuSampleRow] = await spool.history(None, 0.0, 86_400.0)
            depth: int = await spool.backlog_depth()
            last: CcuSampleRow | None = await spool.last_result("1")
            ok_at: float | None = await spool.last_success_at("1")
            sample: CcuSample = rows[0].sample()
            held: tuple[CcuSampleRow, ...] = reporter.unrecorded
            print(resent, depth, last, ok_at, sample.reqkey, rows[0].state.value, len(held))
    outcome: CcuOutcome = gs_hooks.ccu.classify(302)
    print(outcome.value)


async def start_or_explain(config: Config) -> None:
    hooks = gs_hooks.setup(config)
    try:
        await hooks.start()
    except gs_hooks.StoreError as exc:
        setting: str = exc.setting
        path: str = exc.path
        print(setting, path, exc.problem)
        raise
    try:
        for health in hooks.stores_health():
            ok: bool = health.ok
            print(health.name, ok, health.error, health.since)
    finally:
        await hooks.aclose()
