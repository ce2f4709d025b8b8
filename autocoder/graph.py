"""Component diagrams of a compiled system: Mermaid (for READMEs) and Graphviz DOT.

Names in the diagram are validated identifiers; free text (descriptions) is never included,
so nothing from the blueprint can break out of the diagram syntax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autocoder.ir.models import IR

SHAPES = {  # Mermaid node shapes by kind
    "api_endpoint": ("[/", "/]"),
    "source": ("[/", "/]"),
    "store": ("[(", ")]"),
    "sink": ("[[", "]]"),
    "router": ("{", "}"),
    "filter": ("{{", "}}"),
    "aggregator": ("[", "]"),
    "transformer": ("[", "]"),
    "custom": ("[", "]"),
}
DOT_SHAPES = {
    "api_endpoint": "invhouse",
    "source": "invhouse",
    "store": "cylinder",
    "sink": "house",
    "router": "diamond",
    "filter": "hexagon",
}


def mermaid(ir: IR) -> str:
    lines = ["flowchart LR"]
    for comp in ir.components:
        left, right = SHAPES[comp.kind]
        lines.append(f'    {comp.name}{left}"{comp.name}<br/><small>{comp.kind}</small>"{right}')
    for binding in ir.bindings:
        source = binding.source
        for target in binding.to:
            label = source.port + ("" if binding.condition is None else " (if)")
            lines.append(f"    {source.component} -->|{label}| {target.component}")
    return "\n".join(lines) + "\n"


def dot(ir: IR) -> str:
    lines = [f'digraph "{ir.system.name}" {{', "    rankdir=LR;", "    node [fontname=Helvetica];"]
    for comp in ir.components:
        shape = DOT_SHAPES.get(comp.kind, "box")
        lines.append(f'    {comp.name} [shape={shape}, label="{comp.name}\\n{comp.kind}"];')
    for binding in ir.bindings:
        source = binding.source
        for target in binding.to:
            style = "" if binding.condition is None else ", style=dashed"
            lines.append(f'    {source.component} -> {target.component} [label="{source.port}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
