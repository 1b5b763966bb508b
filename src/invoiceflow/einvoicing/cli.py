"""`invoiceflow einvoice …`: the validator from the command line, for operators and CI pipelines.

Exit status: 0 when every file is valid, 1 when any file has a fatal finding or was refused (malformed,
hostile or not an e-invoice), 2 when the rules folder is not configured or incomplete.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from invoiceflow.core.errors import AppError
from invoiceflow.core.settings import get_settings
from invoiceflow.einvoicing.errors import EInvoiceRulesMissing
from invoiceflow.einvoicing.validator import ValidationReport, Validator, get_validator

app = typer.Typer(help="E-invoices (UBL 2.1, CII D16B): validation against the official rules.", no_args_is_help=True)
console = Console()

_SEVERITY_STYLE = {"fatal": "red", "warning": "yellow", "information": "blue"}
# The compiled rules spell every step as `*:Name[namespace-uri()='…'][1]` or `Q{…}Name[1]`: exact, but
# unreadable in a terminal table. `--json` keeps the exact XPath.
_NS_PREDICATE = re.compile(r"\[namespace-uri\(\)='[^']*'\]|Q\{[^}]*\}|\*:")


def short_location(xpath: str) -> str:
    """`/*:Invoice[namespace-uri()='…'][1]/*:Party[namespace-uri()='…'][1]` → `/Invoice[1]/Party[1]`."""
    return _NS_PREDICATE.sub("", xpath)


def _validator(rules_dir: Path | None) -> Validator:
    if rules_dir is not None:
        return get_validator(rules_dir)
    return Validator.from_settings(get_settings())


def _rules_missing(exc: EInvoiceRulesMissing, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}))
    else:
        console.print(Text(exc.message, style="red"))
    raise typer.Exit(2)


def _print_report(name: str, report: ValidationReport) -> None:
    verdict = "[green]valid[/green]" if report.valid else "[red]INVALID[/red]"
    layers = ", ".join(f"{layer} {report.layer_status(layer)}" for layer in report.layers_run)
    console.print(
        f"[bold]{escape(name)}[/bold]: {report.document_type} ({report.syntax}) {verdict}  [dim]{layers}[/dim]"
    )
    for skipped in report.layers_skipped:
        console.print(Text(f"  {skipped.layer}: {skipped.reason}", style="dim"))
    if not report.findings:
        return
    table = Table(show_lines=False)
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("location", overflow="fold")
    table.add_column("message", overflow="fold")
    # Text, not markup strings: locations and messages are full of square brackets.
    for finding in report.findings:
        location = short_location(finding.location) + (f" (line {finding.line})" if finding.line else "")
        table.add_row(
            Text(finding.rule_id),
            Text(finding.severity, style=_SEVERITY_STYLE[finding.severity]),
            Text(location),
            Text(finding.message),
        )
    console.print(table)


@app.command("validate")
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="UBL or CII XML files.", exists=True, dir_okay=False, readable=True)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document with every result.")] = False,
    rules_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the official XSD and schematron (default: INVOICEFLOW_EINVOICE_RULES_DIR)."),
    ] = None,
) -> None:
    """Validate FILE... (XSD, EN 16931, Peppol BIS 3); exit 1 if any file is invalid."""
    try:
        validator = _validator(rules_dir)
    except EInvoiceRulesMissing as exc:
        _rules_missing(exc, as_json)
    results: list[dict[str, Any]] = []
    failed = False
    for path in files:
        try:
            report = validator.validate(path.read_bytes())
        except EInvoiceRulesMissing as exc:  # the folder lost files after start-up
            _rules_missing(exc, as_json)
        except AppError as exc:
            failed = True
            results.append(
                {"file": str(path), "error": {"code": exc.code, "message": exc.message, "details": exc.details}}
            )
            if not as_json:
                console.print(f"[bold]{escape(str(path))}[/bold]: [red]refused[/red] {exc.code}: {escape(exc.message)}")
            continue
        failed = failed or not report.valid
        results.append({"file": str(path), **report.as_dict()})
        if not as_json:
            _print_report(str(path), report)
    if as_json:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    raise typer.Exit(1 if failed else 0)
