"""Rate and watch it learn: a rating is stored, then the history and the recommendations
change, before and after side by side."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from movierec.client import MovierecClient
from tests.ui.conftest import card_ids, on_page


def test_rating_a_movie_changes_the_history_and_the_recommendations(
    ui: AppTest, api_url: str
) -> None:
    user = 5
    on_page(ui, "rate", rate_user=str(user))
    before = card_ids(ui, "mr-before")
    assert before == card_ids(ui, "mr-after")
    top = before[0]
    ui.feedback(key=f"rate_{user}_{top}").set_value(4).run()  # five stars
    assert not ui.exception
    with MovierecClient(api_url) as api:
        profile = api.user(user)
        now = api.recommend_user(user, 10)
    assert profile.recent_ratings[0].movie_id == top
    assert profile.recent_ratings[0].rating == 5.0
    after = card_ids(ui, "mr-after")
    assert card_ids(ui, "mr-before") == before  # "before" is kept
    assert after == [m.movie_id for m in now.items]
    assert top not in after  # a rated movie is seen: no longer recommended
