"""The `edge-ae` command. Training and export commands load lazily: they need torch."""

from __future__ import annotations

import importlib

import click

from edge_runtime import __version__

# name -> (module, attribute, short help); imported only when the command is run or asked for help.
_LAZY = {
    "train": ("train.cli", "train_command", "Train an autoencoder and write a checkpoint (needs edge-ae[train])."),
    "export": ("export.cli", "export_command", "Export a checkpoint to a self-describing ONNX file (needs edge-ae[train])."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _LAZY:
            return super().get_command(ctx, name)
        module, attr, short = _LAZY[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name not in {"torch", "onnx"} and not (e.name or "").startswith(("torch.", "onnx.")):
                raise
            missing = e.name

            @click.command(name, help=short, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args: tuple[str, ...]) -> None:
                raise click.ClickException(
                    f"'edge-ae {name}' needs {missing}, which is not installed; install it with: pip install 'edge-ae[train]'"
                )

            return unavailable

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in _LAZY:
                rows.append((name, _LAZY[name][2]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-ae")
def cli() -> None:
    """Denoise camera and video frames live, flag anomalous frames, and train your own autoencoders."""


def main() -> None:
    cli(prog_name="edge-ae")
