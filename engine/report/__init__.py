"""整改情况报告: the rectification report, built from the store and written as md, html or docx."""
