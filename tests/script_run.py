"""Running a console script in-process as its installed program runs it (`cli.run_script`)."""

import contextlib
import io

from adm_edu.cli import run_script


def as_user_sees(func, *argv) -> tuple:  # (exit status, stdout, stderr)
    "A console script's function run on `argv` as its program runs: its exit status and output."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_script(func, [str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()
