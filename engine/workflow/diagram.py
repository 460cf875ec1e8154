"""The state diagram of a workflow, drawn by transitions' diagram support (Graphviz)."""

from __future__ import annotations

from pathlib import Path

from transitions.extensions import GraphMachine

from .schema import TransitionDef, WorkflowDef
from .words import GUARD_WORDS, ROLE_WORDS


def edge_label(t: TransitionDef) -> str:
    """The Chinese label of a transition, with who may take it (roles) after it."""
    label = t.label or t.trigger
    if t.roles:
        label += "（" + "、".join(ROLE_WORDS.get(r, r) for r in t.roles) + "）"
    return label


def guard_words(t: TransitionDef) -> list[str]:
    return [GUARD_WORDS.get(c, c) for c in t.conditions] + [f"非{GUARD_WORDS.get(u, u)}" for u in t.unless]


def draw(wf: WorkflowDef, path: Path) -> None:
    """Write ``wf``'s diagram to ``path`` (.svg or .png), states labelled in Chinese."""
    class _Drawn:  # a throwaway model: drawing needs one, the workflow's machines never do
        pass

    drawn = _Drawn()
    GraphMachine(
        model=drawn,
        states=[{"name": s.name} for s in wf.states],
        initial=wf.initial,
        # edges read in Chinese: the step's label, who may take it, and its guards in brackets
        # (strings here: drawing never evaluates them)
        transitions=[{"trigger": edge_label(t), "source": list(t.source), "dest": t.dest, "conditions": guard_words(t)}
                     for t in wf.transitions],
        auto_transitions=False,
        title=f"{wf.title or wf.name} ({wf.name})",
        show_conditions=True,
        graph_engine="graphviz",
    )
    graph = drawn.get_graph()  # type: ignore[attr-defined]
    for s in wf.states:
        # graphviz node labels: show the zh-CN label beside the code name
        graph.node(s.name, label=f"{s.label}\n{s.name}", fontname="Noto Sans CJK SC")
    graph.draw(str(path), format=path.suffix.lstrip(".").lower(), prog="dot")
