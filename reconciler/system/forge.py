"""Pull requests through a forge's API (GitHub, GitLab, Gitea), for the console's pull-request mode. The token
comes from the environment (``RECONCILER_FORGE_TOKEN``), never from a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.errors import SourceError

FORGE_TOKEN_ENV = "RECONCILER_FORGE_TOKEN"  # noqa: S105 - a variable name, not a secret
KINDS = ("github", "gitlab", "gitea")


@dataclass(frozen=True)
class PullRequest:
    url: str
    number: int


@dataclass(frozen=True)
class Forge:
    """``kind`` at ``api`` (like https://api.github.com), the repository ``project`` (owner/name)."""

    kind: str
    api: str
    project: str
    token: str
    timeout: float = 15.0

    def _request(self, head: str, base: str, title: str, body: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        api = self.api.rstrip("/")
        if self.kind == "gitlab":
            url = f"{api}/projects/{quote(self.project, safe='')}/merge_requests"
            payload = {"source_branch": head, "target_branch": base, "title": title, "description": body}
            return url, {"PRIVATE-TOKEN": self.token}, payload
        owner_repo = "/".join(quote(part, safe="") for part in self.project.split("/", 1))
        payload = {"title": title, "head": head, "base": base, "body": body}
        if self.kind == "gitea":
            return f"{api}/repos/{owner_repo}/pulls", {"Authorization": f"token {self.token}"}, payload
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json"}
        return f"{api}/repos/{owner_repo}/pulls", headers, payload

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        url, headers, payload = self._request(head, base, title, body)
        try:
            response = httpx.post(url, json=payload, headers=headers, timeout=self.timeout, trust_env=False)
        except httpx.HTTPError as exc:
            raise SourceError(f"the forge at {self.api} did not answer: {exc}") from exc
        if response.status_code >= 300:
            raise SourceError(f"the forge refused the pull request: HTTP {response.status_code}: {response.text[:300]}")
        answer = response.json()
        link = answer.get("web_url") if self.kind == "gitlab" else answer.get("html_url")
        number = answer.get("iid") if self.kind == "gitlab" else answer.get("number")
        return PullRequest(str(link or ""), int(number or 0))
