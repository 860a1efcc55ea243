"""The UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright): what a
person sees, checked against the API's own answers. Each test saves a screenshot of its page
into ``MOVIEREC_SCREENSHOTS_DIR`` when set (``docs/screenshots`` holds a committed set).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from movierec.client import MovierecClient
from movierec.data.sources import LoadedData
from movierec.serving.experiment_schemas import ExperimentRequest
from movierec.serving.schemas import NewRating
from movierec.ui.components import display_title
from movierec.ui.experiments import interval, share
from tests.servers import api_server, ui_server
from tests.serving.conftest import API_KEY, Registry, registry, synth_data
from tests.serving.test_admin import _served_registry

__all__ = ["registry", "synth_data"]  # the registry fixtures of the API tests, used here
pytestmark = pytest.mark.network

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
WAIT_MS = 30_000
FULL_HEIGHT = """() => Math.max(...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]'),
    (element) => element.scrollHeight))"""
NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
EXPERIMENT_USERS = range(1, 41)
HORIZON_SECONDS = 4  # the experiment's feedback horizon: short, so that its test ends here


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def ui_url(api_url: str) -> Iterator[str]:
    with ui_server(api_url) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def settled(page: Page) -> None:
    """Wait until Streamlit's script run is over, as Streamlit's own e2e suite does."""
    page.wait_for_selector(DONE, timeout=WAIT_MS)


def screenshot(page: Page, name: str) -> None:
    """The whole page, into ``MOVIEREC_SCREENSHOTS_DIR`` when set. Streamlit scrolls its main
    area itself (the document never grows), so the window is made as tall as that content."""
    folder = os.environ.get("MOVIEREC_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        size = page.viewport_size or {"width": 1400, "height": 1000}
        height = page.evaluate(FULL_HEIGHT)
        page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
        page.evaluate(NEXT_FRAMES)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def card_ids(page: Page, test_id: str = "mr-card") -> list[int]:
    cards = page.locator(f'[data-testid="{test_id}"]')
    return [int(c.get_attribute("data-movie-id") or -1) for c in cards.all()]


def test_for_you_shows_the_apis_top_10_in_order(page: Page, ui_url: str, api_url: str) -> None:
    with MovierecClient(api_url) as api:
        expected = api.recommend_user(1, 10).items
    page.goto(f"{ui_url}/?user=1")
    expect(page.locator('[data-testid="mr-card"]')).to_have_count(10)
    settled(page)
    assert card_ids(page) == [m.movie_id for m in expected]
    titles = page.locator('[data-testid="mr-card"] .mr-title').all_inner_texts()
    assert titles == [display_title(m.title) for m in expected]
    expect(page.get_by_text("Personalized", exact=True)).to_be_visible()
    screenshot(page, "for-you")


def test_deep_link_to_a_movie_opens_similar_movies(page: Page, ui_url: str, api_url: str) -> None:
    with MovierecClient(api_url) as api:
        expected = api.similar(1, 10).items
    page.goto(f"{ui_url}/?movie=1")
    expect(page.locator('[data-testid="mr-selected"]')).to_have_attribute("data-movie-id", "1")
    expect(page.locator('[data-testid="mr-card"]')).to_have_count(10)
    settled(page)
    assert card_ids(page) == [m.movie_id for m in expected]
    screenshot(page, "similar")


def test_three_picked_movies_become_recommendations(page: Page, ui_url: str, api_url: str) -> None:
    page.goto(f"{ui_url}/start")
    settled(page)
    for query, movie_id in (("toy story", 1), ("jumanji", 2), ("heat", 6)):
        page.locator(".st-key-cold_search input").fill(query)
        page.locator(f".st-key-add_{movie_id} button").click()
        expect(page.locator(f".st-key-remove_{movie_id}")).to_be_visible()
    with MovierecClient(api_url) as api:
        expected = api.recommend_anonymous(liked=[1, 2, 6]).items
    expect(page.locator('[data-testid="mr-card"]')).to_have_count(10)
    settled(page)
    assert card_ids(page) == [m.movie_id for m in expected]
    screenshot(page, "start-from-movies")


def test_rating_a_movie_changes_history_and_recommendations(
    page: Page, ui_url: str, api_url: str
) -> None:
    user = 7
    page.goto(f"{ui_url}/rate?rate_user={user}")
    expect(page.locator('[data-testid="mr-after"]')).to_have_count(10)
    settled(page)
    top = card_ids(page, "mr-after")[0]
    page.locator(f".st-key-rate_{user}_{top} button").nth(4).click()  # five stars
    with MovierecClient(api_url) as api:
        expect(page.locator('[data-testid="mr-after"]').first).not_to_have_attribute(
            "data-movie-id", str(top)
        )
        settled(page)
        profile = api.user(user)
        now = api.recommend_user(user, 10).items
    assert profile.recent_ratings[0].movie_id == top
    assert card_ids(page, "mr-after") == [m.movie_id for m in now]
    assert card_ids(page, "mr-before")[0] == top  # "before" is kept beside
    latest = display_title(profile.recent_ratings[0].title)
    expect(page.get_by_role("link", name=latest).first).to_be_visible()
    screenshot(page, "rate")


@pytest.mark.parametrize("name", ["browse", "models", "monitoring"])
def test_other_pages_render_without_errors(page: Page, ui_url: str, name: str) -> None:
    page.goto(f"{ui_url}/{name}")
    settled(page)
    expect(page.locator("h1").first).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, name)


def test_the_api_docs_render_without_internet(page: Page, api_url: str) -> None:
    page.goto(f"{api_url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.get_by_text("/users/{user_id}/recommendations").first).to_be_visible()
    page.goto(f"{api_url}/redoc")
    expect(page.get_by_text("Recommendations").first).to_be_visible()


def test_with_the_api_stopped_a_banner_says_so(page: Page, dead_api_url: str) -> None:
    with ui_server(dead_api_url) as url:
        page.goto(f"{url}/?user=1")
        banner = page.get_by_test_id("stAlertContentError")
        expect(banner).to_contain_text("The movierec API is not answering")
        expect(banner).to_contain_text(dead_api_url)
        expect(page.get_by_role("button", name="Retry")).to_be_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, "api-down")


@pytest.fixture(scope="module")
def monitored(api_url: str) -> None:
    """Traffic for the Monitoring page: lists served and rated, and a crowd of new raters."""
    for user in (3, 4, 5):
        shown = httpx.get(f"{api_url}/users/{user}/recommendations", params={"k": 5}).json()
        rating = {"user_id": user, "movie_id": shown["items"][0]["movie_id"], "rating": 4.5}
        httpx.post(f"{api_url}/ratings", json=rating).raise_for_status()
    crowd = [
        {"user_id": 800_000 + n % 12, "movie_id": movie, "rating": 1.0}
        for n, movie in enumerate([1, 2, 3, 6, 10, 16, 19, 21, 25, 32] * 6)
    ]
    httpx.post(f"{api_url}/ratings", json={"ratings": crowd}).raise_for_status()


@pytest.mark.parametrize(
    ("tab", "name"),
    [
        ("Served quality", "monitoring-served"),
        ("Online feedback", "monitoring-online"),
        ("Data drift", "monitoring-drift"),
    ],
)
@pytest.mark.usefixtures("monitored")
def test_monitoring_tabs_draw_their_charts(page: Page, ui_url: str, tab: str, name: str) -> None:
    page.goto(f"{ui_url}/monitoring")
    settled(page)
    page.get_by_role("tab", name=tab).click()
    panel = page.get_by_role("tabpanel", name=tab)
    expect(panel.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible(timeout=WAIT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, name)


def test_the_experiments_page_says_none_runs_yet(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/experiments")
    expect(page.get_by_text("No experiment yet")).to_be_visible()
    settled(page)
    screenshot(page, "experiments-none")


def test_a_finished_ab_test_shows_its_arms_rates_and_verdict(
    page: Page, registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    """An A/B test of the registry's two versions on a real API, with users shown lists and
    rating some of them (the treatment's users more) until its horizon ends: the page shows
    the API's own figures and verdict."""
    settings = _served_registry(registry, synth_data, tmp_path)
    with (
        api_server(settings) as url,
        ui_server(url) as ui,
        MovierecClient(url, api_key=API_KEY) as api,
    ):
        plan = ExperimentRequest(
            name="ALS seed 2 against the champion",
            treatment_version=2,
            planned_users=len(EXPERIMENT_USERS),
            horizon_days=HORIZON_SECONDS / 86_400,
        )
        started = api.start_experiment(plan)
        for user in EXPERIMENT_USERS:  # each rates 0-2 movies shown (control) or 2-4 (treatment)
            answer = api.recommend_user(user, 10)
            assert answer.experiment is not None
            assert answer.experiment.id == started.id
            liked = user % 3 + 2 * (answer.experiment.arm == "treatment")
            rated = [item.movie_id for item in answer.items[:liked]]
            if rated:
                api.add_ratings(
                    NewRating(user_id=user, movie_id=movie, rating=5.0 - 2 * (n % 2))
                    for n, movie in enumerate(rated)
                )
        deadline = time.monotonic() + HORIZON_SECONDS + 30
        # Final once every showing's horizon is over (the experiment's own rule, asked of it).
        while not (details := api.experiment(started.id)).result.final:
            assert time.monotonic() < deadline, "the experiment never became final"
            time.sleep(0.25)
        assert details.result.winner == "treatment"
        page.goto(f"{ui}/experiments")
        expect(page.locator(".st-key-exp_verdict")).to_contain_text("Treatment · v2 wins")
        expect(page.locator('[data-testid="stVegaLiteChart"]')).to_be_visible()
        settled(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        expect(page.locator("h3").first).to_have_text(f"#{started.id} · {plan.name}")
        verdict = page.locator(".st-key-exp_verdict").inner_text()
        assert f"p = {details.result.p_value:.2g}" in verdict
        assert "fixed-horizon Welch's t-test" in verdict
        effect = details.result.effect
        assert f"{100 * effect.value:+.1f} pp (95% CI {100 * effect.low:+.1f}" in verdict  # type: ignore[operator]
        progress = page.locator(".st-key-exp_horizon").inner_text()
        assert f"Users: {details.users} of {details.planned_users} planned" in progress
        shown = sum(arm.impressions for arm in details.arms)
        assert f"{shown} of {shown} shown movies" in progress
        for arm in details.arms:
            card = page.locator(f".st-key-exp_arm_{arm.arm}")
            expect(card.locator("h4")).to_have_text(f"{arm.arm.capitalize()} · v{arm.version}")
            assert metrics(card) == {
                "Users": (str(arm.users), f"{arm.impressions} movies shown"),
                "User hit rate": (f"{arm.user_hit_rate.value:.1%}", interval(arm.user_hit_rate)),
                "Hit rate": (f"{arm.hit_rate.value:.1%}", interval(arm.hit_rate)),
            }
        table = page.locator('[data-testid="stTable"]')
        header = table.locator("thead th").all_inner_texts()
        assert header[1:] == ["Control · v1", "Treatment · v2"]
        rows = {
            row.locator("th").inner_text(): row.locator("td").all_inner_texts()
            for row in table.locator("tbody tr").all()
        }
        rate = "{0.value:.1%} ({1})".format
        assert rows == {
            "share": [share(details, arm) for arm in details.arms],
            "users": [str(arm.users) for arm in details.arms],
            "movies shown": [str(arm.impressions) for arm in details.arms],
            "rated": [str(arm.rated) for arm in details.arms],
            "rated ≥ 4★": [str(arm.positive) for arm in details.arms],
            "still open": ["0", "0"],
            **{
                name: [rate(figure, interval(figure)) for figure in figures]
                for name, figures in (
                    ("user hit rate", [arm.user_hit_rate for arm in details.arms]),
                    ("hit rate", [arm.hit_rate for arm in details.arms]),
                    ("positive rate", [arm.positive_rate for arm in details.arms]),
                )
            },
        }
        screenshot(page, "experiments")


def metrics(scope: Locator) -> dict[str, tuple[str, str]]:
    """The label of each ``st.metric`` in ``scope``: its value and its delta line."""
    found = {}
    for metric in scope.locator('[data-testid="stMetric"]').all():
        label = metric.get_by_test_id("stMetricLabel").inner_text().strip()
        value = metric.get_by_test_id("stMetricValue").inner_text().strip()
        found[label] = (value, metric.get_by_test_id("stMetricDelta").inner_text().strip())
    return found
