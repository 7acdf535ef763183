"""Agent settings as /config shows them: no secret or credential."""

from __future__ import annotations

from reconciler.settings import AgentSettings


def test_config_hides_secrets_and_credentials() -> None:
    """GET /config shows the settings without the webhook secret or a token in the URL."""
    settings = AgentSettings(repo="https://user:tok@git.example/r.git", node="n", webhook_secret="s3cret")
    shown = settings.public()
    assert shown["repo"] == "https://***@git.example/r.git"
    assert "s3cret" not in repr(shown)
    assert "s3cret" not in repr(settings)
