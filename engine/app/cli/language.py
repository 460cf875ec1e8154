"""The CLI in the reader's language: which one (``--lang``, then the environment) and click's help in it.

Commands and groups built with :class:`Command`/:class:`Group` get a help formatter (click's
``Context.formatter_class`` hook) that translates their docstrings and the help of their options as
click writes them; a group's listing translates its subcommands' help before cutting it to the
terminal's width (cutting first would leave nothing to look up).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterable, Sequence

import click
from rich.cells import cell_len

from ... import i18n
from ...i18n import _, translate

# an option's help as click writes it: the help, two spaces, then the extras click itself translated
_EXTRAS = re.compile(r"\A(?P<help>.*?)(?P<extras>  \[[^\[\]]*\])\Z", re.DOTALL)
# the end of the first sentence of a Chinese or English help text
_SENTENCE = re.compile(r"(?<=[。！？])|(?<=\.)\s")


def language_option(argv: Sequence[str]) -> str | None:
    """The value of ``--lang`` on the command line, read before click parses it.

    It must be known before click's own errors (``No such option``) and before ``--help`` of any
    command print, so it is taken from the raw arguments; the option itself is declared on the
    group so that click accepts it and ``--help`` lists it.
    """
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
    return None


def start(argv: Sequence[str]) -> None:
    """Choose the language for this run and point click's own texts at the catalogue."""
    i18n.choose(i18n.language_from(os.environ, language_option(argv)))
    i18n.bind_click()


def help_record(record: tuple[str, str]) -> tuple[str, str]:
    name, text = record
    translated = translate(text)
    if translated == text:
        found = _EXTRAS.match(text)
        if found is not None:
            translated = translate(found["help"]) + found["extras"]
    return name, translated


def short_help(command: click.Command, limit: int) -> str:
    if command.short_help:
        return translate(command.short_help)
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    translated = translate(text)
    if translated == text:
        return command.get_short_help_str(limit)
    first = translated.split("\n\n", 1)[0].replace("\n", " ")
    return _SENTENCE.split(first, 1)[0].strip()


# a token of Chinese text: one CJK character, or a run of anything else up to a space
_TOKEN = re.compile(r"[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f“”‘’…—]|[^\s\u2e80-\u9fff\uff00-\uffef\u3000-\u303f“”‘’…—]+|\s+")
# punctuation that never starts a line (it stays with the character before it)
_NO_LINE_START = set("，。；：、）」』”’！？…")


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` terminal cells: a Chinese character is two cells, a line may break
    between any two of them (click's wrapping counts characters and breaks only at spaces)."""
    lines: list[str] = []
    line, used = "", 0
    for token in _TOKEN.findall(" ".join(text.split())):
        size = cell_len(token)
        if token.isspace():
            if line:
                line, used = line + " ", used + 1
            continue
        if used + size > width and line.strip() and token not in _NO_LINE_START:
            lines.append(line.rstrip())
            line, used = "", 0
        line, used = line + token, used + size
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


class Formatter(click.HelpFormatter):
    """Click's help formatter, translating each text and each option's help as it is written.

    In Chinese it also wraps by terminal cells (see :func:`wrap`); English is left to click.
    """

    def write_heading(self, heading: str) -> None:
        colon = ":" if i18n.current() == i18n.ENGLISH else "："
        self.write(f"{'':>{self.current_indent}}{heading}{colon}\n")

    def write_text(self, text: str) -> None:
        text = translate(text)
        if i18n.current() == i18n.ENGLISH:
            super().write_text(text)
            return
        indent = " " * self.current_indent
        width = max(self.width - self.current_indent, 11)
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        for n, paragraph in enumerate(paragraphs):
            if n:
                self.write("\n")
            for line in wrap(paragraph, width):
                self.write(f"{indent}{line}\n")

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        records = [help_record(row) for row in rows]
        if i18n.current() == i18n.ENGLISH or not records:
            super().write_dl(records, col_max, col_spacing)
            return
        first_col = min(max(cell_len(first) for first, _second in records), col_max) + col_spacing
        for first, second in records:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if cell_len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - cell_len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap(second, max(self.width - first_col - 2 - self.current_indent, 10))
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


class Context(click.Context):
    formatter_class = Formatter


class Command(click.Command):
    """A click command whose help is read in the chosen language."""

    context_class = Context

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        # click keeps the --help option once made, its help text translated in the language of
        # that time; one process may print help in both (the tests do), so it is made afresh
        if getattr(self, "_help_option", None) is not None:
            self._help_option = None
        return super().get_help_option(ctx)


class Group(Command, click.Group):
    """A click group whose help and whose subcommands' short help are read in the chosen language."""

    command_class = Command
    group_class = type  # a group made with @group.group() is one of these too

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, cmd) for name in self.list_commands(ctx)
                    if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _cmd in commands)
            with formatter.section(_("Commands")):
                formatter.write_dl([(name, short_help(cmd, limit)) for name, cmd in commands])
