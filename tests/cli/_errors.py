"""The check every command-line error test makes: one `Error:` line, no traceback."""


def one_error_line(result, *needles, code=2):
    """Assert that a CliRunner `result` exited with `code` and printed exactly one `Error:` line
    holding every string of `needles`, and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
