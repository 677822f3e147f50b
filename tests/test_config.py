"""Configuration strictness: configs that used to pass ``config --check`` and then broke
money (issue 14) are errors that name the key."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from figures import FIGURES
from hftcore.cli import main
from hftcore.config import EXAMPLE, MAX_DEPTH, Config, ConfigError


@pytest.mark.parametrize("text,key", [
    ("charges:\n  brokerage_cap_paise: 2000.0\n", "charges.brokerage_cap_paise"),
    ("charges:\n  brokerage_cap_paise: true\n", "charges.brokerage_cap_paise"),
    ("charges:\n  gst_rate: .inf\n", "charges.gst_rate"),
    ("charges:\n  sebi_rate: .nan\n", "charges.sebi_rate"),
    ("charges:\n  stt_rate: 0.1\n", "charges.stt_rate"),
    ("charges:\n  gst_rate: 18\n", "charges.gst_rate"),
    ("execution:\n  quantity: 10.0\n", "execution.quantity"),
    ("execution:\n  max_position_size: 1e3\n", "execution.max_position_size"),
    ("risk:\n  max_daily_loss: .inf\n", "risk.max_daily_loss"),
    ("capital: .nan\n", "capital"),
    ("strategies:\n  ema_trend: {weight: .inf}\n", "strategies.ema_trend.weight"),
    ("strategies:\n  rsi_reversion: {params: {oversold: -.inf}}\n",
     "strategies.rsi_reversion.params.oversold"),
    ("risk:\n  max_daily_loss: 100\nrisk:\n  price_band: 0.1\n", "duplicate key 'risk'"),
    ("execution:\n  quantity: 5\n  quantity: 50\n", "duplicate key 'quantity'"),
    ("strategies:\n  ema_trend: {weight: 1, weight: 2}\n", "duplicate key 'weight'"),
])
def test_configs_that_break_money_are_errors_naming_the_key(tmp_path, text, key):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")) as info:
        Config.load(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_a_duplicated_section_no_longer_drops_a_limit_silently(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("risk:\n  max_daily_loss: 5000\n\nexecution:\n  quantity: 5\n"
                 "risk:\n  price_band: 0.1\n")
    assert main(["config", "--check", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"hftcore: error: {f}: duplicate key 'risk' on line 6 (first on line 1)"


def test_deep_nesting_is_one_config_error_not_a_recursion_error(tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text("strategies: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested"):
        Config.load(f)
    nested: dict = {}
    d = nested
    for _ in range(MAX_DEPTH + 2):
        d["a"] = {}
        d = d["a"]
    with pytest.raises(ConfigError, match=r"'strategies(\.a)+' is nested"):
        Config.from_dict({"strategies": nested})


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("strategies:\n  ema_trend: &w {weight: 1.0}\n"
                 "  rsi_reversion:\n    <<: *w\n    weight: 2.0\n")
    assert Config.load(f).strategies["rsi_reversion"]["weight"] == 2.0


def test_unreadable_files_name_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"capital: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Config.load(f)


def test_the_example_and_exact_values_still_load(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(EXAMPLE + "\n")
    assert Config.load(f).quantity == 10
    f.write_text("charges:\n  brokerage_cap_paise: 1500\n  gst_rate: 0\n")
    assert Config.load(f).charge_schedule().brokerage_cap_paise == 1500


# ---------------------------------------------------------------- fuzz: nothing but ConfigError

absurd = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
              st.sampled_from(["5m", "close", "zero", "zerodha_intraday", "RELIANCE", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["capital", "risk", "execution", "charges", "strategies",
                                 "ema_trend", "params", "weight", "quantity", "gst_rate",
                                 "brokerage_cap_paise", "max_daily_loss", "symbols", "x"]),
                                inner, max_size=4)),
    max_leaves=30)
SECTIONS = ["capital", "symbols", "instruments", "timeframes", "strategies", "fusion",
            "execution", "risk", "charges", "indicators"]


def tried(n=1):
    FIGURES["config inputs fuzzed"] = FIGURES.get("config inputs fuzzed", 0) + n


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes_are_a_config_or_a_config_error(tmp_path, data):
    f = tmp_path / "fuzz.yaml"
    f.write_bytes(data)
    try:
        Config.load(f)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(f) in str(exc)
    tried()


@given(st.dictionaries(st.sampled_from(SECTIONS), absurd, max_size=5))
def test_absurd_structures_are_a_valid_config_or_a_config_error(data):
    try:
        cfg = Config.from_dict(data)
    except ConfigError:
        tried()
        return
    # whatever passed builds a session's parts without raising
    cfg.charge_schedule()
    cfg.strategy_engine()
    cfg.risk_limits()
    tried()
