"""Every HTML page (report.html, the Agent models page) is a Jinja template in views/templates/ rendered with
autoescape on: a value from logs, specs or reasons is text unless it was built here as markup, and `Markup.format`
escapes what it is given. No page loads a script, a stylesheet or a font from elsewhere."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from agent_retraining.views.notifications import run_url

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a field the page module forgot is an error, not an empty cell
)


def render_page(template: str, **context) -> str:
    return _TEMPLATES.get_template(template).render(**context)


def passed(ok: bool) -> Markup:
    return Markup('<span class="pass">pass</span>') if ok else Markup('<span class="fail">FAIL</span>')


def code(text: str) -> Markup:
    return Markup("<code>{}</code>").format(text)


def link(href: str, text: str, target: str) -> Markup:
    return Markup('<a href="{}" target="{}">{}</a>').format(href, target, text)


def run_link(dag_id: str, run_id: str | None, text: str | None = None) -> Markup | str:
    """A link to the run in Airflow's own view, relative to where the plugin serves its pages (/agent-models/, up to
    the API server's root), opened in the whole window: the pages are framed by Airflow's UI."""
    return link(run_url("..", dag_id, run_id), text or run_id, "_top") if run_id else ""


def report_link(key: str | None) -> Markup | str:
    return link("report?" + urlencode({"key": key}), "report", "_blank") if key else ""


def number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def joined(*parts) -> Markup:
    """Cells made of several pieces: text pieces are escaped, markup pieces kept."""
    return Markup("").join(parts)
