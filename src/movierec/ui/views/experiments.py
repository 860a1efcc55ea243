"""Experiments: online A/B and interleaving tests between registry versions; start, follow,
stop, promote (behind the admin key)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from movierec.client import APIError, ClientError
from movierec.serving.experiment_schemas import ExperimentDetails, ExperimentRequest
from movierec.ui.api import ADMIN_KEY, admin_client, call, client

ERROR = "experiments_error"  # the API's answer to this session's last admin action, if it failed
DESIGNS = {"ab": "A/B (each user sees one arm)", "interleaving": "Team-draft interleaving"}


def _message(exc: ClientError) -> str:
    return exc.detail if isinstance(exc, APIError) else str(exc)


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "none yet"
    if low is None or high is None:
        return f"{value:.2%}"
    return f"{value:.2%} [{low:.2%}, {high:.2%}]"


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
    result = details.result
    cols = st.columns(4)
    cols[0].metric("Users", f"{details.users:,}", f"planned {details.planned_users:,}",
                   delta_color="off")  # fmt: skip
    cols[1].metric("p-value", "none yet" if result.p_value is None else f"{result.p_value:.3g}")
    cols[2].metric("Winner", result.winner or "none (yet)")
    cols[3].metric("Final", "yes" if result.final else "not yet")
    effect = result.effect
    st.caption(
        f"{result.test.replace('_', ' ')}, fixed horizon at alpha {result.alpha:g}: the "
        f"treatment's gain {_interval(effect.value, effect.low, effect.high)}. The p-value is "
        "valid once final (planned users reached, no showing still within the "
        f"{details.horizon_days:g}-day horizon); reading it earlier is peeking."
    )
    table = pd.DataFrame(
        [
            {
                "arm": arm.arm,
                "version": arm.version,
                "users": arm.users,
                "impressions": arm.impressions,
                "rated": arm.rated,
                "pending": arm.pending,
                "hit rate": _interval(arm.hit_rate.value, arm.hit_rate.low, arm.hit_rate.high),
                "user hit rate": _interval(
                    arm.user_hit_rate.value, arm.user_hit_rate.low, arm.user_hit_rate.high
                ),
                **({} if arm.preferred_by is None else {"preferred by": arm.preferred_by}),
            }
            for arm in details.arms
        ]
    )
    st.dataframe(table, hide_index=True)


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
with st.form("start_experiment"):
    st.text_input("Name", key="exp_name", value="challenger vs champion")
    st.selectbox("Design", list(DESIGNS), format_func=DESIGNS.__getitem__, key="exp_design")
    st.number_input("Control version (0: the champion)", 0, 2**31 - 1, 0, key="exp_control")
    st.number_input("Treatment version", 1, 2**31 - 1, 2, key="exp_treatment")
    st.number_input("Planned users", 2, 10**9, 400, key="exp_users")
    st.number_input("Alpha", 0.001, 0.5, 0.05, key="exp_alpha")
    st.form_submit_button("Start experiment", on_click=admin_action, args=("start",))
if listed and chosen.status != "promoted":
    stop_col, promote_col = st.columns(2)
    if chosen.status == "running":
        stop_col.button("Stop", key="exp_stop", on_click=admin_action, args=("stop", chosen.id))
    promote_col.button(
        "Promote the winner", key="exp_promote", on_click=admin_action,
        args=("promote", chosen.id),
    )  # fmt: skip
if ERROR in st.session_state:
    st.error(st.session_state[ERROR], icon=":material/lock:")
