"""``vla-ros serve``: one policy served over HTTP to many arms (Ray Serve, dynamic batching)."""

from __future__ import annotations

import argparse
import time

from vla_ros.cli.model import add_policy_arguments, policy_config_from_args, require_checkpoint_dir
from vla_ros.errors import UserInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve one policy to many arms over HTTP (Ray Serve, dynamic batching)",
        description=(
            "Serve one OpenVLA checkpoint over HTTP: POST /act (image + instruction -> action), "
            "GET /health, GET /metadata. Requests that arrive together are decoded as one batch. "
            "Point policy_node at it with inference_backend:=remote remote_url:=http://HOST:PORT."
        ),
    )
    add_policy_arguments(serve)
    serve.add_argument("--device", default="auto", help="auto (cuda when a replica has a GPU), cpu, cuda")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch-size", type=int, default=8, help="1 turns batching off")
    serve.add_argument(
        "--batch-wait-timeout-s", type=float, default=0.01, help="how long a batch waits to fill"
    )
    serve.add_argument("--num-replicas", type=int, default=1, help="model copies (each loads the model)")
    serve.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica (0: CPU)")
    serve.add_argument(
        "--num-cpus",
        type=float,
        default=1.0,
        help="CPU cores per replica; Ray gives torch as many threads (raise it to serve on a CPU)",
    )
    serve.add_argument(
        "--ray-address",
        default=None,
        help="join a running Ray cluster ('auto', or ray://HEAD:10001) instead of starting one here",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    # The replicas load the model; a wrong path or option is refused here, before Ray starts.
    require_checkpoint_dir(args.model)
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port} is not a TCP port (0-65535)")
    if args.max_batch_size < 1:
        raise UserInputError(
            f"--max-batch-size must be at least 1 (1 turns batching off), got {args.max_batch_size}"
        )
    if args.num_replicas < 1:
        raise UserInputError(f"--num-replicas must be at least 1, got {args.num_replicas}")
    if not args.batch_wait_timeout_s >= 0:
        raise UserInputError(f"--batch-wait-timeout-s must not be negative, got {args.batch_wait_timeout_s}")
    if not args.num_gpus >= 0:
        raise UserInputError(f"--num-gpus must not be negative, got {args.num_gpus}")

    from vla_ros.serving.server import build_app, policy_config_dict, start_server, stop_server

    device = args.device
    if device == "auto":
        device = "cuda" if args.num_gpus > 0 else "cpu"
    config = policy_config_from_args(args, device)
    app = build_app(
        policy_config_dict(config),
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_timeout_s,
        num_replicas=args.num_replicas,
        num_gpus=args.num_gpus,
        num_cpus=args.num_cpus,
    )
    url = start_server(app, host=args.host, port=args.port, ray_address=args.ray_address)
    print(f"serving {args.model} at {url} (POST /act, GET /health, GET /metadata); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("stopping the policy server", flush=True)
    finally:
        stop_server()
    return 0
