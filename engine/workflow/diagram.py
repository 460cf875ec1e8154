"""The state diagram of a workflow, drawn by transitions' diagram support (Graphviz)."""

from __future__ import annotations

from pathlib import Path

from transitions.extensions import GraphMachine

from .schema import WorkflowDef


def draw(wf: WorkflowDef, path: Path) -> None:
    """Write ``wf``'s diagram to ``path`` (.svg or .png), states labelled in Chinese."""
    class _Drawn:  # a throwaway model: drawing needs one, the workflow's machines never do
        pass

    drawn = _Drawn()
    GraphMachine(
        model=drawn,
        states=[{"name": s.name} for s in wf.states],
        initial=wf.initial,
        transitions=[{"trigger": t.trigger, "source": list(t.source), "dest": t.dest} for t in wf.transitions],
        auto_transitions=False,
        title=f"{wf.title or wf.name} ({wf.name})",
        show_conditions=False,
        graph_engine="graphviz",
    )
    graph = drawn.get_graph()  # type: ignore[attr-defined]
    for s in wf.states:
        # graphviz node labels: show the zh-CN label beside the code name
        graph.node(s.name, label=f"{s.label}\n{s.name}", fontname="Noto Sans CJK SC")
    graph.draw(str(path), format=path.suffix.lstrip(".").lower(), prog="dot")
