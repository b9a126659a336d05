"""``mlops-lite artifact list|versions`` and ``mlops-lite model list|versions|stage``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_lite.cli.output import format_time, open_client, table

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``artifact`` and ``model`` to the ``mlops-lite`` parser."""
    artifact = subparsers.add_parser("artifact", help="named artifacts and their versions")
    artifact_sub = artifact.add_subparsers(dest="artifact_command", metavar="COMMAND")
    artifact_sub.required = True
    listing = artifact_sub.add_parser("list", help="every named artifact")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=_list_artifacts)
    versions = artifact_sub.add_parser("versions", help="the versions of one artifact")
    versions.add_argument("name", help="artifact name")
    versions.add_argument("--json", action="store_true", help="print JSON for scripts")
    versions.set_defaults(handler=_artifact_versions)

    model = subparsers.add_parser("model", help="models, their versions and stages")
    model_sub = model.add_subparsers(dest="model_command", metavar="COMMAND")
    model_sub.required = True
    listing = model_sub.add_parser("list", help="every model")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=_list_models)
    versions = model_sub.add_parser("versions", help="the versions of one model")
    versions.add_argument("name", help="model name")
    versions.add_argument("--json", action="store_true", help="print JSON for scripts")
    versions.set_defaults(handler=_model_versions)
    stage = model_sub.add_parser(
        "stage",
        help="move a model version to a stage",
        description="Example: mlops-lite model stage churn 3 production --force",
    )
    stage.add_argument("name", help="model name")
    stage.add_argument("version", help="version name, number or stage (e.g. staging)")
    stage.add_argument("stage", help="staging, production, archived or none")
    stage.add_argument(
        "--force", action="store_true", help="archive the version holding the stage, if any"
    )
    stage.add_argument("--json", action="store_true", help="print JSON for scripts")
    stage.set_defaults(handler=_set_stage)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _list_artifacts(args: argparse.Namespace) -> int:
    with open_client() as client:
        artifacts = client.list_artifacts()
        if args.json:
            _print_json([artifact.to_dict() for artifact in artifacts])
            return 0
        if not artifacts:
            print("no named artifacts yet: name step outputs with Annotated[T, 'name']")
            return 0
        rows = [
            [
                entry["name"],
                str(entry["versions"]),
                str(entry["latest_version"]),
                format_time(entry["latest_created"]),
                ", ".join(entry["tags"]),
            ]
            for entry in (artifact.to_dict() for artifact in artifacts)
        ]
        print(table(rows, ["ARTIFACT", "VERSIONS", "LATEST", "CREATED", "TAGS"]))
    return 0


def _artifact_versions(args: argparse.Namespace) -> int:
    with open_client() as client:
        versions = client.get_artifact(args.name).versions.values()
        if args.json:
            _print_json([version.to_dict() for version in versions])
            return 0
        rows = [
            [
                version.version,
                str(version.id)[:8],
                version.type,
                f"{version.producer_run_name or '-'}/{version.producer_step_name or '-'}",
                format_time(version.created),
                ", ".join(version.tags),
            ]
            for version in versions
        ]
        print(table(rows, ["VERSION", "ID", "TYPE", "PRODUCED BY (RUN/STEP)", "CREATED", "TAGS"]))
    return 0


def _list_models(args: argparse.Namespace) -> int:
    with open_client() as client:
        models = client.list_models()
        if args.json:
            _print_json([model.to_dict() for model in models])
            return 0
        if not models:
            print("no models yet: give a pipeline model=Model(name=...)")
            return 0
        rows = [
            [
                model.name,
                str(len(model.versions)),
                str(model.latest_version_name),
                model.stages.get("production", "-"),
                model.stages.get("staging", "-"),
            ]
            for model in models
        ]
        print(table(rows, ["MODEL", "VERSIONS", "LATEST", "PRODUCTION", "STAGING"]))
    return 0


def _model_versions(args: argparse.Namespace) -> int:
    with open_client() as client:
        versions = client.list_model_versions(args.name)
        if args.json:
            _print_json([version.to_dict() for version in versions])
            return 0
        rows = [
            [
                str(version.number),
                version.name,
                version.stage or "-",
                format_time(version.created),
                version.author,
                version.run_names[0] if version.run_names else "-",
            ]
            for version in versions
        ]
        print(table(rows, ["NUMBER", "NAME", "STAGE", "CREATED", "AUTHOR", "CREATED BY RUN"]))
    return 0


def _set_stage(args: argparse.Namespace) -> int:
    with open_client() as client:
        version = client.get_model_version(args.name, args.version)
        version.set_stage(args.stage, force=args.force)
        after = client.get_model_version(args.name, version.id)
        change = after.stage_history[-1] if after.stage_history else {}
        if args.json:
            _print_json({"version": after.to_dict(), "change": change})
            return 0
        archived = f" (version {change['archived']} archived)" if change.get("archived") else ""
        print(f"model {args.name} version {after.name} is now {after.stage or 'none'}{archived}")
    return 0
