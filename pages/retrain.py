"""Retrain: settings, the Retrain button, live progress of the job, its result and gate decision."""
import json
from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from mlops_core import metrics
from mlops_core.errors import AlreadyRunningError
from ui import actions, auth, context, data, dialogs, frame, state, tables, widgets

#: Seconds between two looks at a running job.
POLL_S = 1.0

frame.enter()
st.title("Retrain")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
prod = data.production(ctx.db, ctx.model)
mode = "manual"
with widgets.guard("Automation policy"):
    mode = getattr(data.policy(ctx.db, ctx.model), "mode", "manual")
st.caption(f"{ctx.model} · production " + (f"v{prod}" if prod is not None else "not set") + f" · policy mode **{mode}**. A retrain trains the champion's pipeline on "
           "fresh labelled traffic, evaluates candidate and champion on the same most recent rows, applies the "
           "gate and registers the candidate. "
           + ("It is promoted automatically when it passes." if mode == "automated"
              else "Promotion is yours to decide (manual mode)."))

last = None
with widgets.guard("Newest prediction"):
    last = data.last_prediction(ctx.db, ctx.model)

clicked = False
running = None
with widgets.guard("Retrain status"):
    running = data.active_retrain(ctx.db, ctx.model)
if not auth.can("operator"):
    auth.read_only_note("starting a retrain")
else:
    actions.warm_up_jobs(ctx.db)
    with st.container(border=True):
        st.markdown("**Settings**")
        c1, c2 = st.columns(2)
        window_days = c1.number_input("Days of labelled data", min_value=1, max_value=365, value=30, step=1,
                                      key="retrain_days", help="The window of logged predictions whose labels arrived.")
        end_day = c2.date_input("Window ends on (UTC, end of day)", value=(last or datetime.now()).date(),
                                key="retrain_end", help="Defaults to the day of the newest logged prediction.")
        with st.expander("Hyperparameters (optional)"):
            hp_text = st.text_area("Overrides as JSON, e.g. {\"learning_rate\": 0.05, \"max_iter\": 200}", value="",
                                   key="retrain_hp", help="Names of the estimator's parameters; empty keeps the "
                                                          "champion's.")
        clicked = st.button("Retrain", type="primary", key="retrain", disabled=running is not None,
                            help="A retrain is running: wait for it to finish." if running is not None else None)

    if clicked:
        with widgets.guard("Starting the retrain"):
            try:
                hp = json.loads(hp_text) if hp_text.strip() else {}
            except json.JSONDecodeError as exc:
                st.error(f"The hyperparameters are not valid JSON ({exc.msg} at character {exc.pos}) — write them as "
                         "{\"name\": value, ...} or leave the box empty.")
                hp = None
            if hp is not None and not isinstance(hp, dict):
                st.error("The hyperparameters must be a JSON object such as {\"learning_rate\": 0.05}.")
                hp = None
            if hp is not None:
                end = datetime.combine(end_day, time()) + timedelta(days=1) - timedelta(microseconds=1)
                try:
                    run_id = actions.start_retrain(ctx.db, ctx.model, {"window_days": int(window_days),
                                                                       "end": end.isoformat(), "hyperparameters": hp})
                    st.session_state[state.RETRAIN_RUN] = run_id
                except AlreadyRunningError as exc:
                    st.warning(widgets.md(exc))
                else:
                    widgets.flash("info", "Retrain started; its progress is below. The job runs in the background: "
                                          "you may leave or reload this page.")
                    st.rerun()  # redraw with the Retrain button disabled while the job runs


def champion_of(stats: dict, gate: dict) -> tuple[int | None, dict]:
    """The champion's version and metrics on the shared holdout, wherever the run recorded them (the run's statistics,
    or its gate decision: ``champion_metrics`` or ``metrics.champion``)."""
    version = stats.get("champion_version", gate.get("champion_version"))
    found = stats.get("champion_metrics") or gate.get("champion_metrics") or (gate.get("metrics") or {}).get("champion")
    return (int(version) if version is not None else None), dict(found or {})


def show_result(run) -> None:
    """The finished run: outcome, gate decision with reasons, metrics, and Promote when allowed."""
    stats = run.statistics or {}
    finished = run.finished_at or run.created_at
    st.markdown(f"**Latest retrain** · {run.status} · started by {widgets.md(run.actor)} · finished "
                f"{finished:%Y-%m-%d %H:%M} UTC" + (f" · took {tables.seconds(run.duration_s)}" if run.duration_s else ""))
    if run.status == "failed":
        st.error(f"The retrain failed: {widgets.md(run.error or run.message)} — check the settings (a longer window gives more "
                 "labelled rows) and try again; the run is listed on the Runs & audit page.")
        return
    made = [v for v in data.versions(ctx.db, ctx.model) if v.run_id == run.id]
    cand = stats.get("candidate_version") or (made[0].version if made else None)
    gate = stats.get("gate") or (made[0].gate if made else None) or {}
    if cand is None:
        st.info(f"The run registered no version: {widgets.md(run.message or 'no message')}.")
        return
    passed = bool(gate.get("passed"))
    if passed:
        st.success(f"v{cand} passed the gate and was registered as a candidate"
                   + (" and promoted to production." if stats.get("promoted") else "."))
    else:
        st.warning(f"v{cand} failed the gate and was registered as rejected.")
    st.markdown("**Gate decision**")
    for reason in gate.get("reasons", []):
        st.markdown(f"- {widgets.md(reason)}")
    cm = stats.get("candidate_metrics") or (gate.get("metrics") or {}).get("candidate") or \
        (made[0].holdout_metrics if made else {})
    champ_version, chm = champion_of(stats, gate)
    names = [m for m in metrics.CATALOGUE if m in set(cm) | set(chm)]
    if names:
        champ_name = f"Champion v{champ_version}" if champ_version is not None else "Champion"
        table = pd.DataFrame({"metric": [charts_label(m) for m in names],
                              "candidate": [cm.get(n) for n in names], "champion": [chm.get(n) for n in names]})
        rows = stats.get("holdout_rows") or gate.get("holdout_rows") or (made[0].holdout_rows if made else None)
        span = ""
        if stats.get("holdout_start") and stats.get("holdout_end"):
            span = f" ({tables.when(stats['holdout_start'])} to {tables.when(stats['holdout_end'])})"
        trained = stats.get("train_rows") or (made[0].train_rows if made else None)
        st.caption(f"Both scored on the same {tables.number(rows)} most recent labelled rows{span}"
                   + (f"; the candidate was trained on {tables.number(trained)} rows." if trained else "."))
        tables.show(table, [tables.Column("metric", "Metric"),
                            tables.Column("candidate", f"Candidate v{cand}", "decimal"),
                            tables.Column("champion", champ_name, "decimal")])
    for a in stats.get("anomalies") or []:
        st.caption(f"Data check ({widgets.md(a.get('severity'))}): {widgets.md(a.get('message'))}")
    version = next((v for v in data.versions(ctx.db, ctx.model) if v.version == cand), None)
    if version is not None and version.status == "candidate" and passed:
        if not auth.can("operator"):
            st.caption(f"v{cand} is a candidate; an operator can promote it.")
        elif mode == "manual":
            if st.button("Promote", type="primary", key="retrain_promote"):
                dialogs.request("promote", db=ctx.db, model=ctx.model, version=cand,
                                current=data.production(ctx.db, ctx.model), status=version.status, gate=version.gate)
        else:
            st.caption("Automated mode promotes candidates that pass; this one was not (production changed while "
                       "it ran). Promote it from the Versions page.")
    elif version is not None:
        st.caption(f"v{cand} is now {version.status}.")


def charts_label(name: str) -> str:
    """A metric's label with its unit and the way that is better."""
    m = metrics.CATALOGUE.get(name)
    if m is None:
        return name.replace("_", " ")
    arrow = "" if m.direction is None else (" ↓" if m.lower_is_better else " ↑")
    return m.display(info.unit) + arrow


@st.fragment(run_every=POLL_S)
def live(run_id: str) -> None:
    """Progress of the running job, refreshed every POLL_S seconds; a full rerun when it ends."""
    with widgets.guard("Following the retrain"):
        run = data.run(ctx.db, run_id)
        if run.status in ("succeeded", "failed"):
            data.clear()
            st.rerun()
        st.progress(min(max(run.progress or 0.0, 0.0), 1.0),
                    text=f"Retrain {run.status}: {widgets.md(run.message or 'waiting to start')}")
        st.caption(f"Started by {widgets.md(run.actor)} at {run.created_at:%H:%M:%S} UTC. The job runs in the background: you "
                   "may leave or reload this page.")


with widgets.guard("Retrain status"):
    active = running or data.active_retrain(ctx.db, ctx.model)
    if active is not None:
        live(active.id)
    else:
        latest = data.latest_run(ctx.db, ctx.model)
        if latest is None:
            st.info("No retrain has run for this model yet. Pick the settings above and press **Retrain**.")
        else:
            show_result(data.run(ctx.db, latest.id))
