"""``repmix generate``: continue a prompt with a causal model (greedy, top-p or a plugin's strategy)."""

from __future__ import annotations

import argparse

from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix generate`` (a ``repmix_add_commands`` hook, like any plugin's)."""
    g = subparsers.add_parser(
        "generate",
        help="continue a prompt with a causal language model",
        description="Load a run directory, a saved model or a config (built untrained) and continue TEXT with "
        "its causal tower. The decoding strategy is --strategy, else the config's generate: block, else greedy. "
        "Strategies are components (entry-point group repmix.decoding): std ships greedy and top-p.",
    )
    g.add_argument("source", metavar="RUN_OR_MODEL", help="run directory, saved model directory or YAML config")
    g.add_argument("--prompt", required=True, help="text to continue")
    g.add_argument("--strategy", default=None, help="decoding strategy (greedy, top-p, or a plugin's)")
    g.add_argument("--top-p", type=float, default=None, dest="top_p", help="nucleus mass p (implies --strategy top-p)")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature (top-p)")
    g.add_argument("--max-new-tokens", type=int, default=64, dest="max_new_tokens", help="tokens to generate (default 64)")
    g.add_argument("--seed", type=int, default=None, help="seed of sampling strategies")
    g.add_argument("--tower", default=None, help="tower to generate with (default: the first causal one)")
    g.add_argument("--device", default="cpu", help="torch device (default cpu)")
    g.add_argument("--ids", action="store_true", help="also print the generated token ids")
    g.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    """Print the prompt followed by its continuation."""
    from repmix.cli.model_cmds import check_device
    from repmix.core.errors import InputError
    from repmix.engine.generation import build_strategy, causal_tower, generate_text, load_for_generation

    if args.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    check_device(args.device)
    strategy_name = args.strategy
    options: dict = {}
    if args.top_p is not None:
        strategy_name = strategy_name or "top-p"
        options["p"] = args.top_p
    if args.temperature is not None:
        strategy_name = strategy_name or "top-p"
        options["temperature"] = args.temperature
    model, cfg = load_for_generation(args.source, device=args.device)
    causal_tower(model, args.tower)  # refuse a model without a causal head before building anything else
    strategy = build_strategy(cfg, strategy_name, options)
    out = generate_text(model, args.prompt, strategy, tower=args.tower, max_new_tokens=args.max_new_tokens,
                        seed=args.seed)
    print(out.prompt + out.text)
    if args.ids:
        print(" ".join(str(i) for i in out.ids))
    return 0
