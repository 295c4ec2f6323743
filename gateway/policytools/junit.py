"""JUnit XML for `gateway test`, in the layout CI servers read (one testsuite per file)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from itertools import groupby
from pathlib import Path

from gateway.policytools.cases import Result


def write_junit(results: list[Result], output: Path) -> None:
    """Write one <testsuite> per case file, one <testcase> per case, to `output`."""
    root = ElementTree.Element("testsuites", name="gateway test")
    root.set("tests", str(len(results)))
    root.set("failures", str(sum(not result.passed for result in results)))

    for file, group in groupby(results, key=lambda result: result.case.file):
        suite_results = list(group)
        suite = ElementTree.SubElement(root, "testsuite", name=str(file))
        suite.set("tests", str(len(suite_results)))
        suite.set("failures", str(sum(not result.passed for result in suite_results)))
        for result in suite_results:
            _add_case(suite, result)

    tree = ElementTree.ElementTree(root)
    ElementTree.indent(tree)
    tree.write(output, encoding="utf-8", xml_declaration=True)


def _add_case(suite: ElementTree.Element, result: Result) -> None:
    case = result.case
    element = ElementTree.SubElement(
        suite, "testcase", name=case.name, classname=case.file.stem,
        file=str(case.file), line=str(case.line),
    )
    if not result.passed:
        failure = ElementTree.SubElement(element, "failure",
                                         message=result.failures[0])
        failure.text = "\n".join(result.failures)
