"""Models: the served model, the registry, the latest leaderboard; training and tuning jobs."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from movierec.client import APIError, ClientError
from movierec.serving.schemas import JobResponse
from movierec.ui.api import ADMIN_KEY, admin_client, call, client

JOB = "models_job"  # the job this session started and follows
JOB_OVER = "models_job_over"  # whether that job has ended (then nothing polls any more)
ERROR = "models_error"  # the API's answer to this session's last admin action, if it failed
AT_K = re.compile(r"^(?P<metric>[a-z_]+)@(?P<k>\d+)$")
SHOWN_METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage@10", "rmse")
# The families with a search space (movierec.training.tuning.SEARCH_SPACES); the API says so too.
TUNABLE = ("als", "bpr", "ease", "rp3beta", "item_knn", "svd", "svdpp", "knn_baseline", "baseline")

ORIGINS = {"registry": "the registry", "local": "a saved model folder"}
JOB_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/autorenew:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/cancel:",
}


def _message(exc: ClientError) -> str:
    """The API's own message for an answer, the whole explanation for no answer."""
    return exc.detail if isinstance(exc, APIError) else str(exc)


st.title("Models")
current = call(lambda: client().current_model(), "Reading the served model")
registry = call(lambda: client().registry(), "Reading the registry")
board = call(lambda: client().leaderboard(), "Reading the leaderboard")

version = f"v{current.version}" if current.version is not None else "(local, not registered)"
st.subheader(f"Serving `{current.name}` {version}")
cols = st.columns(4)
ndcg = current.metrics.get("ndcg@10")
cols[0].metric("NDCG@10", "not measured" if ndcg is None else f"{ndcg:.4f}")
cols[1].metric("Users", f"{current.n_users:,}")
cols[2].metric("Movies", f"{current.n_items:,}")
cols[3].metric("Loaded in", f"{current.load_seconds:.2f} s")
st.caption(
    f"Loaded {current.loaded_at:%Y-%m-%d %H:%M:%S} UTC from {ORIGINS[current.source]}; "
    f"data snapshot `{(current.snapshot_hash or 'unknown')[:12]}`."
)


def metric_at_k(metrics: dict[str, float]) -> pd.DataFrame:
    """metric@K as a table: one row per K, one column per metric."""
    rows: dict[int, dict[str, float]] = {}
    for name, value in metrics.items():
        match = AT_K.match(name)
        if match and match["metric"] in {"ndcg", "precision", "recall", "map", "hit_rate"}:
            rows.setdefault(int(match["k"]), {})[match["metric"]] = value
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


curve = metric_at_k(current.metrics)
if len(curve) > 1:
    st.markdown("**The served model's ranking quality at each K** (its holdout evaluation)")
    st.line_chart(curve, x_label="K", y_label="metric")

registry_tab, board_tab, jobs_tab = st.tabs(["Registry", "Latest leaderboard", "Jobs"])
with registry_tab:
    if not registry.versions:
        st.info("The registry has no versions yet: run the pipeline (`movierec pipeline run`).")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": v.version,
                        "aliases": ", ".join(v.aliases),
                        "model": v.model,
                        "created": v.created_at,
                        **{m: v.metrics.get(m) for m in SHOWN_METRICS},
                    }
                    for v in registry.versions
                ]
            ),
            hide_index=True,
        )
        st.caption(
            f"Registered model `{registry.registered_model}`: the champion is served; a "
            "challenger did not beat it."
        )
with board_tab:
    if not board.entries:
        st.info("No pipeline run is recorded yet.")
    else:
        table = pd.DataFrame(
            [
                {"model": e.model, **{m: e.metrics.get(m) for m in SHOWN_METRICS}}
                for e in board.entries
            ]
        ).dropna(axis="columns", how="all")
        st.dataframe(table.sort_values("ndcg@10", ascending=False), hide_index=True)
        st.bar_chart(table, x="model", y="ndcg@10", horizontal=True)
        when = f" started {board.started_at:%Y-%m-%d %H:%M} UTC" if board.started_at else ""
        st.caption(f"Pipeline run `{board.run_id}`{when}, every model on one split.")

with jobs_tab:
    st.text_input(
        "Admin API key",
        type="password",
        key=ADMIN_KEY,
        persist_state="session",
        help="MOVIEREC_API_KEY of the server. Kept in this browser session only.",
    )

    def started(action: str) -> None:
        with admin_client() as admin:
            try:
                job = {
                    "train": admin.start_training,
                    "tune": lambda: admin.start_tuning(
                        st.session_state["tune_model"], st.session_state["tune_trials"]
                    ),
                }[action]()
            except ClientError as exc:
                st.session_state[ERROR] = _message(exc)
                return
        st.session_state[JOB] = job.job_id
        st.session_state[JOB_OVER] = False
        st.session_state.pop(ERROR, None)

    def reloaded() -> None:
        with admin_client() as admin:
            try:
                answer = admin.reload()
            except ClientError as exc:
                st.session_state[ERROR] = _message(exc)
                return
        st.session_state.pop(ERROR, None)
        now = answer.current
        st.toast(f"Serving {now.name} v{now.version}" + ("" if answer.changed else " (unchanged)"))

    train_col, tune_col, reload_col = st.columns(3)
    train_col.button(
        "Start training", on_click=started, args=("train",), type="primary", key="start_training"
    )
    with tune_col:
        st.selectbox("Tune model", TUNABLE, key="tune_model", persist_state="session")
        st.number_input("Trials", 1, 500, 10, key="tune_trials", persist_state="session")
        st.button("Start tuning", on_click=started, args=("tune",), key="start_tuning")
    reload_col.button("Reload the champion", on_click=reloaded, key="reload")
    if ERROR in st.session_state:
        st.error(st.session_state[ERROR], icon=":material/lock:")

    following = st.session_state.get(JOB) is not None and not st.session_state.get(JOB_OVER)

    # Polls only while a job of this session runs; its end reruns the whole page, so the
    # registry and leaderboard a training job changed are read again.
    @st.fragment(run_every="2s" if following else None)
    def follow_job() -> None:
        job_id = st.session_state.get(JOB)
        if job_id is None:
            return
        with admin_client() as admin:
            try:
                job = admin.job(job_id)
            except ClientError as exc:
                st.error(_message(exc))
                st.session_state[JOB_OVER] = True
                return
        show_job(job)
        if following and job.status in {"succeeded", "failed"}:
            st.session_state[JOB_OVER] = True
            st.rerun()

    def show_job(job: JobResponse) -> None:
        icon = JOB_ICONS[job.status]
        st.markdown(f"{icon} **{job.kind} job `{job.job_id}`: {job.status}**")
        if job.exit_code is not None:
            st.caption(f"exit code {job.exit_code}")
        st.code("\n".join(job.log_tail[-30:]) or "(no output yet)", language=None)

    follow_job()
