"""Experiments: online A/B and interleaving tests between registry versions; start, follow,
stop, promote (behind the admin key)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from movierec.client import APIError, ClientError
from movierec.serving.experiment_schemas import ExperimentDetails, ExperimentRequest
from movierec.ui.api import ADMIN_KEY, admin_client, call, client
from movierec.ui.experiments import (
    DESIGNS,
    RATES,
    arm_label,
    arms_table,
    duration,
    horizon,
    interval,
    percent,
    rates_chart,
    share,
    verdict,
)

ERROR = "experiments_error"  # the API's answer to this session's last admin action, if it failed
ALERTS = {"success": st.success, "warning": st.warning, "info": st.info}
ICONS = {
    "success": ":material/trophy:",
    "warning": ":material/balance:",
    "info": ":material/hourglass_top:",
}


def _message(exc: ClientError) -> str:
    return exc.detail if isinstance(exc, APIError) else str(exc)


def admin_action(action: str, experiment_id: int | None = None) -> None:
    with admin_client() as admin:
        try:
            if action == "start":
                admin.start_experiment(_request())
            elif action == "stop" and experiment_id is not None:
                admin.stop_experiment(experiment_id)
            elif action == "promote" and experiment_id is not None:
                done = admin.promote_experiment(experiment_id)
                st.toast(f"v{done.promoted_version} is the champion now")
        except ClientError as exc:
            st.session_state[ERROR] = _message(exc)
            return
    st.session_state.pop(ERROR, None)


def _request() -> ExperimentRequest:
    state = st.session_state
    return ExperimentRequest(
        name=state["exp_name"],
        design=state["exp_design"],
        control_version=state["exp_control"] or None,
        treatment_version=state["exp_treatment"],
        planned_users=state["exp_users"],
        alpha=state["exp_alpha"],
    )


def show(details: ExperimentDetails) -> None:
    """One experiment: its plan, verdict, progress, arms side by side, rates and figures."""
    st.subheader(f"#{details.id} · {details.name}")
    since = details.created_at.strftime("%Y-%m-%d %H:%M UTC")
    st.caption(
        f"{DESIGNS[details.design]} · {details.status} since {since} · control "
        f"v{details.control_version} against treatment v{details.treatment_version} · "
        f"α = {details.alpha:g} · feedback horizon {duration(details.horizon_days)} · positive "
        f"from {details.positive_rating:g}★"
    )
    said = verdict(details)
    with st.container(key="exp_verdict"):
        ALERTS[said.kind](f"**{said.headline}.** {said.text}", icon=ICONS[said.kind])
    with st.container(key="exp_horizon", horizontal=True):
        for value, text in horizon(details):
            st.progress(value, text=text)
    for column, arm in zip(st.columns(len(details.arms)), details.arms, strict=True):
        with column.container(border=True, key=f"exp_arm_{arm.arm}"):
            st.markdown(f"#### {arm_label(arm)}")
            st.caption(share(details, arm))
            cols = st.columns(3)
            cols[0].metric("Users", f"{arm.users:,}", f"{arm.impressions:,} movies shown",
                           delta_color="off", delta_arrow="off")  # fmt: skip
            for col, name in zip(cols[1:], RATES[:2], strict=True):
                figure = getattr(arm, name.replace(" ", "_"))
                col.metric(name.capitalize(), percent(figure.value), interval(figure),
                           delta_color="off", delta_arrow="off")  # fmt: skip
    st.altair_chart(rates_chart(details), use_container_width=True)
    st.table(arms_table(details))
    st.caption(
        "Hit rate: the share of the movies shown that the user rated within the horizon "
        "(user hit rate: its mean over users, the unit the A/B test compares; 95% t "
        "interval). Positive rate: the share of those rated at or above the positive rating "
        "(95% Wilson intervals)."
    )


st.title("Experiments")
listed = call(lambda: client().experiments(), "Reading the experiments").experiments
if not listed:
    st.info("No experiment yet: start one below (two versions of the registry).")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": e.id,
                    "name": e.name,
                    "design": e.design,
                    "status": e.status,
                    "control": f"v{e.control_version}",
                    "treatment": f"v{e.treatment_version}",
                    "started": e.created_at,
                }
                for e in listed
            ]
        ),
        hide_index=True,
    )
    chosen = st.selectbox(
        "Experiment", listed, format_func=lambda e: f"#{e.id} {e.name} ({e.status})", key="exp"
    )
    details = call(lambda: client().experiment(chosen.id), "Reading its outcome")
    show(details)

st.subheader("Admin")
st.text_input(
    "Admin API key",
    type="password",
    key=ADMIN_KEY,
    persist_state="session",
    help="MOVIEREC_API_KEY of the server. Kept in this browser session only.",
)
if listed and chosen.status != "promoted":
    with st.container(horizontal=True):
        if chosen.status == "running":
            st.button(
                f"Stop #{chosen.id}", key="exp_stop", on_click=admin_action,
                args=("stop", chosen.id),
            )  # fmt: skip
        won = details.result.final and details.result.winner == "treatment"
        st.button(
            f"Promote the winner of #{chosen.id}", key="exp_promote", on_click=admin_action,
            args=("promote", chosen.id), type="primary" if won else "secondary",
            help="Only once its test is final and the treatment won.",
        )  # fmt: skip
with (
    st.expander("Start an experiment", expanded=not listed),
    st.form("start_experiment", border=False),
):
    st.text_input("Name", key="exp_name", value="challenger vs champion")
    st.selectbox("Design", list(DESIGNS), format_func=DESIGNS.__getitem__, key="exp_design")
    st.number_input("Control version (0: the champion)", 0, 2**31 - 1, 0, key="exp_control")
    st.number_input("Treatment version", 1, 2**31 - 1, 2, key="exp_treatment")
    st.number_input("Planned users", 2, 10**9, 400, key="exp_users")
    st.number_input("Alpha", 0.001, 0.5, 0.05, key="exp_alpha")
    st.form_submit_button("Start experiment", on_click=admin_action, args=("start",))
if ERROR in st.session_state:
    st.error(st.session_state[ERROR], icon=":material/lock:")
