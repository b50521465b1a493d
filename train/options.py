"""The trainer's command line (``python -m train --help``) and the configurations its options describe: the
front-end (:func:`feature_params`), the augmentation (:func:`augment_config`) and the network
(:func:`network_config`); and how a checkpoint's options are compared with a resumed run's (:func:`same_options`).
"""

from __future__ import annotations

import argparse
import json

from .arch import PRESETS
from .model import SCNNConfig
from .teacher import add_arguments as add_teacher_arguments

__all__ = ["build_parser", "FRONT_ENDS", "feature_params", "augment_config", "network_config", "ckpt_args",
           "same_options"]


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train the spiking CNN on FSDD (float, then quantization-aware), export it as a spikesmith model "
                    "and check it bit for bit against the golden model.")
    p.add_argument("--data", required=True, help="directory of FSDD WAV files (see `python -m train.fsdd download`)")
    p.add_argument("--out", default="models/fsdd_scnn", help="model directory to write (default: %(default)s)")
    p.add_argument("--run-dir", help="checkpoints, history and metrics (default: runs/<name of --out>)")
    p.add_argument("--name", help="model name in the manifest (default: name of --out)")
    p.add_argument("--split", default="official", help="official or speaker:NAME (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random generator (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=80, help="float epochs (default: %(default)s)")
    p.add_argument("--qat-epochs", type=int, default=10, help="quantization-aware epochs (default: %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate (default: %(default)s)")
    p.add_argument("--qat-lr", type=float, default=6e-4, help="quantization-aware learning rate (default: %(default)s)")
    p.add_argument("--qat-schedule", choices=["cosine", "constant"], default="cosine",
                   help="quantization-aware learning rate schedule (default: %(default)s)")
    p.add_argument("--swa", type=int, default=0, metavar="N",
                   help="stochastic weight averaging: the network exported is the mean of the weights at the end of "
                        "the last N quantization-aware epochs (a flatter solution than any one of them), instead of "
                        "the last epoch: the validation side then chooses no quantization-aware epoch, only measures "
                        "the mean (use --val-speaker none to train on every speaker); 0 for none "
                        "(default: %(default)s)")
    p.add_argument("--sam", type=float, default=0.0, metavar="RHO",
                   help="sharpness-aware minimization: every step takes the gradient at the weights RHO away along "
                        "the batch's gradient (two passes per batch, with the same dropout masks), toward flat minima, "
                        "which are said to carry better to unseen data and to the integer weights; 0 for none "
                        "(default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (default: %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="label smoothing of the cross-entropy: the target puts EPS of its weight evenly on every "
                        "class, a regularizer for unheard speakers; it smooths the labels of every network the run "
                        "trains (the teacher of --distill and the CNN of --init-from-cnn too), 0 for none "
                        "(default: %(default)s)")
    p.add_argument("--shift", type=int, default=4, help="random time shift in frames (default: %(default)s)")
    p.add_argument("--limit-train", type=int, help="use only this many training files (quick runs)")
    f = p.add_argument_group(
        "front-end", "Every front-end parameter is stored in the model's manifest ('features'), so that the host tool "
        "and `python -m train.features` make the same maps.")
    f.add_argument("--front-end", choices=sorted(FRONT_ENDS), default="robust",
                   help="robust: 32 ms window every 16 ms (48 frames = 0.77 s, 0.2%% of FSDD cropped), DC offset "
                        "removed, per-utterance mean normalization (level-independent); classic: the first "
                        "front-end (25 ms every 10 ms, 15%% cropped, no DC removal) (default: %(default)s)")
    f.add_argument("--cmn", action="store_true",
                   help="per-utterance cepstral mean normalization with --front-end classic (robust has it)")
    f.add_argument("--cvn", action="store_true",
                   help="per-utterance variance normalization as well (CMVN; implies --cmn): each coefficient divided "
                        "by the utterance's own standard deviation over its frames, floored at --cvn-floor")
    f.add_argument("--cvn-floor", type=float, default=0.1,
                   help="smallest standard deviation --cvn divides by (default: %(default)s)")
    f.add_argument("--win-ms", type=float, help="analysis window in ms (default: the front-end's)")
    f.add_argument("--hop-ms", type=float, help="hop in ms (default: the front-end's)")
    f.add_argument("--frames", type=int, help="frames of the input map (default: 48)")
    f.add_argument("--feature-kind", choices=["mfcc", "logmel"], default="mfcc",
                   help="mfcc: cepstral coefficients; logmel: the log mel energies themselves, one row per band, so "
                        "that the convolution slides along the frequency axis (default: %(default)s)")
    f.add_argument("--n-mels", type=int,
                   help="mel filters (default: 32 with mfcc; 16 with logmel, where they are the map's rows)")
    f.add_argument("--n-mfcc", type=int, help="cepstral coefficients kept, the map's height with mfcc (default: 16)")
    f.add_argument("--trim-db", type=float,
                   help="leading/trailing frames this many dB below the loudest are trimmed (default: 35)")
    f.add_argument("--fmin", type=float, metavar="HZ",
                   help="lowest frequency of the mel filterbank, e.g. above the pitch of low voices (default: 0)")
    f.add_argument("--fmax", type=float, metavar="HZ",
                   help="highest frequency of the mel filterbank (default: half the sample rate)")
    f.add_argument("--stretch", action="store_true",
                   help="fit every utterance's trimmed speech to the window by linear interpolation along time "
                        "(no crop, no padding: the map does not say how fast the speaker talks)")
    f.add_argument("--limit", type=float, default=0.0, metavar="SHARE",
                   help="front-end limiter: clip every recording at the magnitude its loudest SHARE of samples "
                        "exceed, so that any saturation milder than that gives the same map, 0 for none (default: "
                        "%(default)s)")
    f.add_argument("--declip", action="store_true",
                   help="declipper: samples saturated at a recording's rails are detected and estimated by "
                        "autoregressive interpolation (train/declip.py) before the features are made")
    f.add_argument("--preemph", type=float, default=0.0,
                   help="pre-emphasis coefficient, 0 for none (default: %(default)s)")
    a = p.add_argument_group(
        "augmentation", "Seeded augmentation (train/augment.py): perturbed copies of the training audio made once "
        "(speed, gain with or without clipping, white/pink/brown noise or babble of other training speakers, DC "
        "offset; with --vtlp a warped mel filterbank; with --reverb-p simulated rooms), one of them drawn per "
        "recording and epoch; masks of coefficient bands and frames per batch.")
    a.add_argument("--augment-copies", type=int, default=4,
                   help="perturbed versions of every training recording, 0 for none (default: %(default)s)")
    a.add_argument("--noise-p", type=float, default=0.8, help="probability of additive noise (default: %(default)s)")
    a.add_argument("--babble-p", type=float, default=None, metavar="P",
                   help="probability that the noise is babble, the other kinds sharing the rest (default: the four "
                        "kinds equally likely)")
    a.add_argument("--snr", type=float, nargs=2, default=[0.0, 30.0], metavar=("LO", "HI"),
                   help="SNR range of the noise in dB (default: 0 30)")
    a.add_argument("--gain-db", type=float, nargs=2, default=[-20.0, 20.0], metavar=("LO", "HI"),
                   help="range of the random gain in dB (default: -20 20)")
    a.add_argument("--clip-p", type=float, default=0.5,
                   help="probability that the gain saturates to 16-bit PCM (default: %(default)s)")
    a.add_argument("--speed", type=float, nargs=2, default=[0.85, 1.15], metavar=("LO", "HI"),
                   help="range of the speed (and pitch) factor (default: 0.85 1.15)")
    a.add_argument("--speed-p", type=float, default=0.5, help="probability of a speed change (default: %(default)s)")
    a.add_argument("--mask-bands", type=int, default=2,
                   help="widest band of coefficients masked per map, 0 for none (default: %(default)s)")
    a.add_argument("--mask-frames", type=int, default=4,
                   help="longest run of frames masked per map, 0 for none (default: %(default)s)")
    a.add_argument("--mask-p", type=float, default=0.5, help="probability of each mask (default: %(default)s)")
    a.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mixup: each batch blended with a shuffled copy of itself by a weight drawn from "
                        "Beta(ALPHA, ALPHA), the two labels' losses blended alike, 0 for none (default: %(default)s)")
    a.add_argument("--trim-jitter", type=float, default=0.0, metavar="DB",
                   help="each perturbed copy trims its silence at a level drawn within DB decibels of --trim-db, so "
                        "that where a recorder's noise floor puts the speech's edges is not learned, 0 for none "
                        "(default: %(default)s)")
    a.add_argument("--reverb-p", type=float, default=0.0,
                   help="probability that a perturbed copy is played through a simulated room (pyroomacoustics), "
                        "0 for never (default: %(default)s)")
    a.add_argument("--rt60", type=float, nargs=2, default=[0.2, 1.0], metavar=("LO", "HI"),
                   help="range of the simulated rooms' reverberation times in seconds (default: 0.2 1.0)")
    a.add_argument("--rooms", type=int, default=32, help="simulated rooms drawn per training (default: %(default)s)")
    a.add_argument("--vtlp", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="vocal tract length perturbation of the perturbed copies: the mel filterbank's frequency axis "
                        "warped by a factor drawn uniformly from LO ... HI, e.g. 0.9 1.1 (piecewise linear, fmax stays "
                        "fmax); moves the formants without the pitch (default: off)")
    a.add_argument("--vtlp-p", type=float, default=1.0,
                   help="probability that a perturbed copy is warped, with --vtlp (default: %(default)s)")
    p.add_argument("--val-speaker", default="auto", metavar="NAME",
                   help="training speaker held out as the validation side, on which the float epoch that starts "
                        "quantization-aware training and the final quantization-aware epoch are chosen; auto: the "
                        "(seed mod n)-th training speaker; none: no validation, the last epochs are kept "
                        "(default: %(default)s)")
    p.add_argument("--val-index", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                   help="instead of a speaker, hold out the training recordings numbered LO ... HI (the number in "
                        "the file name) of every speaker and digit as the validation side: the same speakers as the "
                        "official test side (numbers 0-4), e.g. 5 9 for 300 recordings; replaces --val-speaker")
    p.add_argument("--init-from-cnn", action="store_true",
                   help="train the non-spiking CNN of the same layout first (--cnn-epochs) and start the spiking "
                        "network from its weights, scaled layer by layer to the spiking threshold")
    p.add_argument("--cnn-epochs", type=int, default=30,
                   help="epochs of the CNN with --init-from-cnn (default: %(default)s)")
    g = p.add_argument_group(
        "network", "The default network is conv2d -> OR-pool -> dense LIF layers -> readout, shaped by --channels, "
        "--kernel, --pool and --hidden. --layers or --arch replace it by any stack.")
    g.add_argument("--layers", metavar="STACK",
                   help="the layers before the readout, comma-separated: cCkK[sS][pP] a conv2d of C channels with a "
                        "K x K kernel, stride S (default 1), padding P (default K//2); pHxW an OR-pool; dN a dense "
                        "layer of N neurons; the first layer is a conv2d or dense layer on the INT8 map, and no conv2d "
                        "or pool follows a dense layer. Example: c8k3,p2x2,c16k3,p2x4,d128,d64")
    g.add_argument("--arch", choices=sorted(PRESETS),
                   help="a preset stack: " + "; ".join(f"{k}: {v.layers} with T = {v.time_steps}, {v.about}"
                                                      for k, v in sorted(PRESETS.items())))
    g.add_argument("--channels", type=int, help="convolution output channels of the default network (default: 4)")
    g.add_argument("--kernel", type=int, help="odd square kernel of the default network, same padding (default: 3)")
    g.add_argument("--pool", type=int, nargs=2, metavar=("H", "W"),
                   help="OR-pool window of the default network (default: 2 4)")
    g.add_argument("--hidden", type=int, nargs="*",
                   help="dense LIF layer sizes of the default network (default: 28)")
    g.add_argument("--time-steps", type=int,
                   help="time steps T (default: the preset's with --arch, else 4)")
    g.add_argument("--leak-shift", type=int, default=3, help="k: beta = 1 - 2^-k (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=1.0,
                   help="float threshold of the LIF layers (default: %(default)s)")
    g.add_argument("--reset", choices=["subtract", "zero"], default="subtract",
                   help="reset mechanism (default: %(default)s)")
    g.add_argument("--slope", type=float, default=25.0, help="fast-sigmoid surrogate slope")
    g.add_argument("--dropout", type=float, default=0.0,
                   help="dropout probability on every layer's spikes (activations) before the readout, float "
                        "training only; the exported arithmetic is unchanged (default: %(default)s)")
    g.add_argument("--neuron", choices=["lif", "relu"], default="lif",
                   help="relu: the non-spiking CNN control (float only, not exported)")
    add_teacher_arguments(p)
    p.add_argument("--spram", action="store_true",
                   help="count the iCE40UP5K's four SPRAMs (4 x 256 kbit) toward the weight budget besides the "
                        "block RAM: for models larger than the block RAM holds (the plan puts dense weights into the "
                        "SPRAMs; see docs/hardware.md, 'Weights in SPRAM')")
    p.add_argument("--mem-margin", type=float, default=2.0,
                   help="membrane width headroom over the largest |membrane| on the training set (default: 2)")
    p.add_argument("--no-export", action="store_true", help="train and measure, but write no model directory")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; results depend on it (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="end with one JSON line of figures instead of the summary")
    return p


#: Front-end presets of ``--front-end``: the :class:`train.features.FeatureParams` fields they set.
FRONT_ENDS = {"robust": {"win_ms": 32.0, "hop_ms": 16.0, "dc_remove": True, "cmn": True},
              "classic": {"win_ms": 25.0, "hop_ms": 10.0, "dc_remove": False, "cmn": False}}


def feature_params(args):
    """The unfitted :class:`train.features.FeatureParams` of the front-end options."""
    from .features import FeatureParams
    kw = dict(FRONT_ENDS[args.front_end])
    kw["cmn"] = kw["cmn"] or args.cmn or args.cvn
    kw.update(cvn=args.cvn, cvn_floor=args.cvn_floor)
    if args.feature_kind == "logmel":
        if args.n_mfcc is not None:
            raise ValueError("--n-mfcc sets the cepstral coefficients; with --feature-kind logmel the map has one row "
                             "per mel band: use --n-mels")
        kw["n_mels"] = kw["n_mfcc"] = args.n_mels if args.n_mels is not None else 16
    else:
        kw.update({k: getattr(args, k) for k in ("n_mels", "n_mfcc") if getattr(args, k) is not None})
    kw["kind"] = args.feature_kind
    for name in ("win_ms", "hop_ms", "frames", "trim_db", "fmin", "fmax"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return FeatureParams(preemph=args.preemph, stretch=args.stretch, limit=args.limit, declip=args.declip,
                         **kw)


def augment_config(args):
    """The :class:`train.augment.AugmentConfig` of the augmentation options."""
    from .augment import AugmentConfig
    return AugmentConfig(copies=args.augment_copies, noise_p=args.noise_p, snr_db=tuple(args.snr),
                         gain_db=tuple(args.gain_db), clip_p=args.clip_p, speed=tuple(args.speed),
                         speed_p=args.speed_p, bands=args.mask_bands, frames=args.mask_frames, mask_p=args.mask_p,
                         reverb_p=args.reverb_p, rt60=tuple(args.rt60), rooms=args.rooms, babble_p=args.babble_p,
                         mixup=args.mixup, trim_jitter=args.trim_jitter,
                         **({"vtlp": tuple(args.vtlp), "vtlp_p": args.vtlp_p} if args.vtlp else {}))


_DEFAULT_STACK = {"channels": 4, "kernel": 3, "pool": [2, 4], "hidden": [28]}


def network_config(args, input_shape):
    """The :class:`SCNNConfig` of the options (:func:`build_parser`) for input maps of ``input_shape``; refuses a
    stack given twice."""
    classic = {k: getattr(args, k) for k in _DEFAULT_STACK if getattr(args, k) is not None}
    if args.layers and args.arch:
        raise ValueError("--layers and --arch both give the layer stack; use one")
    layers, steps = args.layers or "", args.time_steps
    if args.arch:
        layers = PRESETS[args.arch].layers
        steps = steps if steps is not None else PRESETS[args.arch].time_steps
    if layers and classic:
        raise ValueError(f"--{'/--'.join(classic)} shape the default network; with --layers or --arch write the "
                         f"whole stack there")
    shape = {**_DEFAULT_STACK, **classic}
    return SCNNConfig(input_shape=input_shape, layers=layers, channels=shape["channels"], kernel=shape["kernel"],
                      pool=tuple(shape["pool"]), hidden=tuple(shape["hidden"]),
                      time_steps=steps if steps is not None else 4, leak_shift=args.leak_shift,
                      threshold=args.threshold, reset=args.reset, slope=args.slope, neuron=args.neuron,
                      dropout=args.dropout)


def ckpt_args(args):
    """The options a checkpoint records: all but where the run writes and how it talks."""
    keep = {k: v for k, v in vars(args).items() if k not in ("resume", "quiet", "no_export", "out",
                                                              "run_dir", "name")}
    return json.loads(json.dumps(keep))


def same_options(saved, current):
    """Whether a checkpoint's options (``saved``) are the run's (``current``), where an option left at its default
    counts as absent: a checkpoint written before an option existed resumes under the new version as it would have
    under the old one."""
    parser = build_parser()

    def set_ones(opts):
        return {k: v for k, v in opts.items()
                if v != json.loads(json.dumps(parser.get_default(k)))}
    return set_ones(saved) == set_ones(current)
