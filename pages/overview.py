"""Overview: per model its verdict (healthy, watch, act) with the reasons and the next step, the headline figures
of the last 7 full days, open incidents and the latest actions."""
import streamlit as st

from mlops_core import metrics
from mlops_core.monitoring.verdict import PERIOD_DAYS, Verdict
from ui import context, data, frame, serving, tables, verdicts, widgets
from ui.tables import Column

frame.enter()
st.title("MLOps control room")
ctx = context.require()
st.caption(f"Every registered model at a glance: its verdict, and the last {PERIOD_DAYS} full days against the "
           f"{PERIOD_DAYS} before (the day in progress is left out: its labels have not arrived).")


def delta_text(value: float | None, digits: int, unit: str = "") -> str | None:
    """A change as ``+0.012``, or None when it rounds to nothing (a zero change gets no arrow and no colour)."""
    if value is None or round(value, digits) == 0:
        return None
    return f"{value:+.{digits}f}{unit}"


def headline(v: Verdict, unit: str | None) -> None:
    f = v.figures
    m = metrics.get(f.metric)
    cols = st.columns(4)
    digits = 3 if m.unit == "share" or f.value is None or abs(f.value) < 10 else 2
    value = "—" if f.value is None else f"{f.value:.{digits}f}"
    cols[0].metric(
        m.display(unit), value, delta_text(f.delta, digits) if f.delta is not None else None,
        delta_color="inverse" if m.lower_is_better else "normal",
        help=(f"{m.label} of the production version over the labelled predictions of the last {PERIOD_DAYS} full "
              f"days ({f.labelled:,} labelled), with its 95% interval "
              + (f"{f.low:.{digits}f}–{f.high:.{digits}f}" if f.low is not None and f.high is not None else "(none)")
              + f"; the change is against the {PERIOD_DAYS} days before"
              + (f" ({f.previous_labelled:,} labelled)." if f.previous is not None else
                 " (not shown: too few labels then).")),
    )
    share, before = f.drift_share, f.drift_share_previous
    points = None if share is None or before is None else round((share - before) * 100)
    cols[1].metric(
        "Drifted features", "—" if share is None else f"{share:.0%}",
        f"{points:+d} pts" if points else None, delta_color="inverse",
        help="Share of features whose drift result was over its threshold on the latest full day "
             + (f"({f.drift_day:%-d %b})" if f.drift_day is not None else "") + f"; the change is against "
             f"{PERIOD_DAYS} days earlier.",
    )
    traffic, before_n = f.predictions, f.previous_predictions
    change = None if not traffic or not before_n else (traffic - before_n) / before_n
    cols[2].metric(
        f"Predictions ({PERIOD_DAYS} days)", "—" if not traffic else f"{traffic:,}",
        None if change is None or round(change, 2) == 0 else f"{change:+.0%}", delta_color="off",
        help=f"Predictions of the production version in the last {PERIOD_DAYS} full days.",
    )
    cov = f.label_coverage
    cols[3].metric(
        "Labelled so far", "—" if cov is None else f"{cov:.0%}",
        help="Share of those predictions whose label has arrived (labels come days late, some never).",
    )


INCIDENT_COLUMNS = [Column("severity", "Severity", "words"), Column("title", "Incident"),
                    Column("current_text", "Now"), Column("last_seen", "Last seen", "time"),
                    Column("windows", "Windows", "int")]
ACTION_COLUMNS = [Column("occurred_at", "When", "time"), Column("action", "Action", "words"),
                  Column("to_version", "Version", "version"), Column("actor", "By"), Column("reason", "Reason")]

for model in ctx.models:
    with st.container(border=True):
        info = data.model_info(ctx.db, model)
        prod = data.production(ctx.db, model)
        top = st.columns([3, 2])
        top[0].subheader(model)
        unit = f" in {widgets.md(info.unit)}" if info.unit else ""
        top[0].caption(f"{info.task} · target `{info.target.replace('`', '')}`{unit} · "
                       f"{len(info.features)} features · " + (f"production v{prod}" if prod is not None
                                                              else "no production version"))
        with top[0]:
            serving.deployment_line(ctx.db, model)
        verdict = None
        with top[1], widgets.guard(f"The verdict on {model}"):
            verdict = verdicts.card(ctx.db, model)
        if verdict is not None:
            with widgets.guard(f"Headline figures of {model}"):
                headline(verdict, info.unit)
        left, right = st.columns(2)
        with left, widgets.guard(f"Incidents of {model}"):
            open_incidents = data.alerts(ctx.db, model, True)
            st.markdown(f"**Open incidents** ({len(open_incidents)})")
            tables.show(open_incidents, INCIDENT_COLUMNS, height=tables.fit_height(len(open_incidents), 5),
                        empty="No open incident.")
        with right, widgets.guard(f"Audit log of {model}"):
            st.markdown("**Latest actions**")
            tables.show(data.audit(ctx.db, model).head(5), ACTION_COLUMNS, empty="No actions recorded.")
