"""A failure in one line: what the task log's last line and the retry warnings say."""

from __future__ import annotations


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def one_line(exc: BaseException) -> str:
    """``Type: first line``; for an error raised in the JVM, its Java exception and the root cause beneath it.

    Py4J's own text (``An error occurred while calling o493.overwrite.``) names neither, so the Java exception is
    read instead: ``org.apache.iceberg...: ... (cause: java.net.ConnectException: Connection refused)``.
    """
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            root, seen = java, 0
            while root.getCause() is not None and seen < 20:
                root, seen = root.getCause(), seen + 1
            text = f"{java.getClass().getName()}: {_first_line(java.getMessage())}"
            if seen:
                text += f" (cause: {root.getClass().getName()}: {_first_line(root.getMessage())})"
            return text
        except Exception:  # noqa: BLE001, S110 - the JVM may be gone; Python's text is the fallback
            pass
    return f"{type(exc).__name__}: {_first_line(str(exc))}"
