"""How duban says a workflow's roles and guards in Chinese: one table for the diagram and the workspace."""

from __future__ import annotations

# Who may take a step (engine/workflow/guards.py STEP_ROLES), as its reader says it.
ROLE_WORDS = {"leader": "责任领导", "department": "责任科室", "reviewer": "审核人", "unit_admin": "单位管理员",
              "admin": "管理员", "anyone": "经办人"}

# A guard as a condition on a diagram's edge ("整改完成 [有佐证材料]").
GUARD_WORDS = {"has_deadline": "有整改时限", "has_evidence": "有佐证材料", "has_new_evidence": "有本轮佐证材料",
               "has_note": "写明理由",
               "has_measures": "有整改措施", "has_owner": "有责任领导和科室", "new_deadline": "有新的整改时限",
               "not_submitter": "非提交人"}

# A guard not yet met, as the workspace tells the person who would take the step ("需上传佐证材料").
GUARD_NEEDS = {
    "has_evidence": "需上传佐证材料",
    "has_new_evidence": "需上传本轮佐证材料",
    "has_note": "需填写说明",
    "has_deadline": "需填写整改时限",
    "new_deadline": "需填写新的整改时限",
    "has_measures": "需填写整改措施",
    "has_owner": "需明确责任领导和责任科室",
    "not_submitter": "提交人不能审核本人提交的事项",
}
