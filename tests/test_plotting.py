"""curve.png of the training commands (rnnkit.plotting): a log-scale loss panel, a titled panel of
validation scores on one stated 0-100 scale (exact match, token accuracy, BLEU), legends clear of the
plotted area."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rnnkit.plotting import curve_figure, plot_curve  # noqa: E402
from rnnkit.seq2seq.train import CURVE_SCORES  # noqa: E402

ROWS = [{"step": 100 * (i + 1), "train_loss": 3.0 / (i + 1), "val_loss": 3.2 / (i + 1), "val_exact_match": i / 10,
         "val_token_acc": 0.5 + i / 20, "val_bleu": 10.0 * i} for i in range(8)]


def _legend_below(ax) -> bool:
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return ax.get_legend().get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0


def test_seq2seq_curve_has_log_loss_and_every_score_on_one_scale():
    fig = curve_figure(ROWS, "loss (nats per target token)", CURVE_SCORES)
    loss, scores = fig.axes
    assert loss.get_yscale() == "log" and "log scale" in loss.get_ylabel()
    assert loss.get_title() and scores.get_title()
    assert "0-100" in scores.get_ylabel() and scores.get_ylim() == pytest.approx((-2, 102))
    lines = {line.get_label(): list(line.get_ydata()) for line in scores.get_lines()}
    assert set(lines) == {"exact match (%)", "token accuracy (%)", "BLEU"}
    assert lines["exact match (%)"][-1] == pytest.approx(70.0) and lines["BLEU"][-1] == pytest.approx(70.0)
    assert _legend_below(loss) and _legend_below(scores)
    assert [t.get_text() for t in loss.get_yticklabels() if t.get_text()]  # numbers on the log axis
    plt.close(fig)


def test_a_missing_score_is_named_and_the_charlm_curve_has_one_panel(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "val_bleu"} for r in ROWS]
    fig = curve_figure(rows, "loss", CURVE_SCORES)
    assert "BLEU: word tokens only" in fig.axes[1].get_title()
    assert len(fig.axes[1].get_lines()) == 2
    plt.close(fig)
    fig = curve_figure(rows)
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    assert plot_curve(ROWS, str(tmp_path / "c.png"), "loss", CURVE_SCORES)
    assert (tmp_path / "c.png").stat().st_size > 10_000
