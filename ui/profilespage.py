"""The profiles of the configuration file (``neostore run``), listed with
what each does, and run as jobs."""

from __future__ import annotations

from aiohttp import web

import neostore

from .html import csrf_field, esc
from .state import state


def _does(profile: neostore.Profile) -> str:
    settings = profile.settings
    paths = ", ".join(settings.get("paths", [])) or "files listed in " + ", ".join(
        settings.get("files-from", [])
    )
    steps = " → ".join(step for step, _ in profile.steps())
    where = settings.get("repo", "the repository in NEOSTORE_REPO")
    return f"{esc(paths)} into {esc(where)}: {esc(steps)}"


async def profiles(request: web.Request) -> web.StreamResponse:
    s = state(request)
    path = neostore.profiles_file()
    try:
        found = neostore.load_profiles(path)
    except neostore.NeostoreError as e:
        body = f'<p class="bad" role="alert">{esc(str(e))}</p>'
        body += "<p>Profiles are described in the README, “Profiles and schedules”.</p>"
        return s.page("Profiles", body)
    csrf = csrf_field(s.guard.csrf)
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{_does(p)}</td><td>"
        f'<form method="post" action="profiles/{esc(name)}/run">{csrf}'
        f'<button type="submit" id="run-{esc(name)}">Run now</button></form></td></tr>'
        for name, p in sorted(found.items())
    )
    body = (
        f"<p>From {esc(str(path))}.</p>"
        f"<table><thead><tr><th>Profile</th><th>What it does</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    return s.page("Profiles", body)


async def run_profile(request: web.Request) -> web.StreamResponse:
    s = state(request)
    name = request.match_info["name"]
    try:
        neostore.load_profiles(neostore.profiles_file())[name]
    except (neostore.NeostoreError, KeyError):
        raise web.HTTPNotFound(text="404: no such profile") from None
    job = s.jobs.submit("profile", f"Run profile {name}", {"name": name})
    raise web.HTTPSeeOther(s.url(f"jobs/{job.number}"))
