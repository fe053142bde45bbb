"""MkDocs hooks (listed under ``hooks:`` in mkdocs.yml).

- ``on_page_markdown`` fills ``cli.md``'s ``<!-- cli-reference -->`` marker with the reference of
  every command, rendered at build time from the Typer app (``synthviz.cli.app``) through Typer's
  and Click's public objects, so the page cannot drift from the code.
- ``on_page_content`` drops the Sphinx roles the docstrings use (``:class:`Result```) from the
  API page, keeping the name as code.
- ``on_files`` publishes the repository's committed ``gallery/`` folder (pictures, thumbnails and its
  ``index.html``) with the site, so the guides show the same files the README does.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- cli-reference -->"


def on_files(files, config):
    """Add every file under the repository's gallery/ to the site, as gallery/<path>."""
    from mkdocs.structure.files import File

    gallery = ROOT / "gallery"
    for path in sorted(p for p in gallery.rglob("*") if p.is_file()):
        uri = path.relative_to(ROOT).as_posix()
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Put the generated CLI reference where cli.md has the marker."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())


_SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):(<code>)~?")


def on_page_content(html, page, config, files):
    """``:class:`~synthviz.result.Result``` in a docstring renders as ``<code>synthviz.result.Result</code>``."""
    return _SPHINX_ROLE.sub(r"\1", html)


def cli_reference() -> str:
    """Markdown for every command of ``synthviz`` (groups recursed), in ``synthviz --help``'s order."""
    import typer

    from synthviz.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="synthviz")
    sections = [_command_section(root, ctx, level=2, overview=True)]
    sections += _subcommand_sections(root, ctx, level=2)
    return "\n\n".join(sections)


def _subcommand_sections(group, ctx, level: int) -> list[str]:
    """One section per visible command of a group; a sub-group's own commands follow it."""
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub_ctx = cmd.context_class(cmd, info_name=name, parent=ctx)
        out.append(_command_section(cmd, sub_ctx, level))
        if hasattr(cmd, "list_commands"):
            out += _subcommand_sections(cmd, sub_ctx, level + 1)
    return out


def _command_section(cmd, ctx, level: int, overview: bool = False) -> str:
    """A heading, the usage line, the help text, then tables of arguments and options."""
    path = ctx.command_path
    lines = [f"{'#' * level} `{path}`", "", "```text", f"{path} {' '.join(cmd.collect_usage_pieces(ctx))}".rstrip(),
             "```", ""]
    for paragraph in (cmd.help or "").split("\n\n"):
        if paragraph.strip():
            lines += [_plain(paragraph), ""]
    if overview or hasattr(cmd, "list_commands"):
        rows = [(f"[`{path} {n}`](#{_anchor(path + ' ' + n)})", _first_line(cmd.get_command(ctx, n)))
                for n in cmd.list_commands(ctx) if not cmd.get_command(ctx, n).hidden]
        lines += _table(("command", "what it does"), rows)
    arguments, options = [], []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or getattr(param, "hidden", False) or param.name == "help":
            continue
        names, text = record
        row = (f"`{names}`", _plain(text))
        (arguments if param.param_type_name == "argument" else options).append(row)
    if arguments:
        lines += ["**Arguments**", ""] + _table(("argument", "meaning"), arguments)
    if options:
        lines += ["**Options**", ""] + _table(("option", "meaning"), options)
    return "\n".join(lines).rstrip()


def _first_line(cmd) -> str:
    return _plain((cmd.short_help or cmd.help or "").strip().split("\n\n")[0])


def _plain(text: str) -> str:
    """Help text as one Markdown paragraph line: whitespace folded, table pipes and tags escaped."""
    text = " ".join(text.replace("\b", " ").split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> list[str]:
    if not rows:
        return []
    return [f"| {header[0]} | {header[1]} |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows] + [""]


def _anchor(title: str) -> str:
    """The id the toc extension gives a heading `synthviz foo-bar`: lower case, spaces to '-'."""
    return "-".join(title.lower().split())
