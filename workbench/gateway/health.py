"""A health check for `workbench doctor` and `/health`: every deployment's breaker and rolling health.

Registered on import with workbench.health's @check.
"""

from __future__ import annotations

from workbench.health import Outcome, check


@check("gateway")
def gateway_check() -> Outcome:
    from workbench.gateway import availability, breaker, cache

    snaps = breaker.snapshot()
    offline, why = availability.local_only()
    hits = cache.stats()
    summary = (f"{len(snaps)} deployment(s) seen; cache hit rate {hits['hit_rate'] if hits['hit_rate'] is not None else '–'}, "
               f"saved ${hits['saved_usd']:.6f}" + (f"; local-only: {why}" if offline else ""))
    broken = [s for s in snaps if s["state"] != "closed"]
    if not broken:
        return "ok", summary, ""
    detail = "; ".join(f"{s['model']} {s['state']} ({s['consecutive_failures']} failures, last: {s['last_error'][:120]})"
                       for s in broken)
    return "fail", f"{detail}. {summary}", ("calls fail over along the policy chain meanwhile; check the provider "
                                            "(`workbench doctor`, its status page) or its key and base URL")
