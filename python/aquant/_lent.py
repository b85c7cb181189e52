"""The model ``validation_fn`` is lent, with the face NNCF's backend lends for the caller's model kind.

NNCF's ONNX backend hands ``validation_fn`` an ``onnx.ModelProto``; its OpenVINO backend a compiled model
(``outputs``, ``output(i)``, ``inputs``, a call returning results keyed by output). The model under evaluation lives
in Rust (:class:`aquant.Model`: callable, answered from the replay table when the inputs are those aquant has just
run, and valid only during the call). These faces wrap it without giving up that fast path:

- :class:`OnnxModel` is usable as an ``onnx.ModelProto``: ``SerializeToString()`` returns the bytes Rust encodes,
  and any other attribute (``graph``, ``opset_import``…) parses them once, on first use — a ``validation_fn`` that
  only calls the model never pays for a parse. Once parsed, the parsed proto is what ``SerializeToString()``
  returns, so edits made through it are kept.
- :class:`CompiledModel` is what ``openvino.CompiledModel`` is to the examples: ports with names and indices, and a
  call returning :class:`Results`, keyed by port, index or name.

Both are also callable as aquant's own model (``model(inputs)``: the list of outputs for the ONNX face).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator, Union


class OnnxModel:
    """The model as NNCF's ONNX backend lends it: an ``onnx.ModelProto`` (parsed lazily) that is also callable."""

    def __init__(self, model: Any):
        self._model = model
        self._proto = None

    def __call__(self, inputs: Any) -> list:
        """The model's outputs on ``inputs`` (one array, a tuple/list in input order, or a dict name → array)."""
        return self._model(inputs)

    @property
    def input_names(self) -> list[str]:
        return self._model.input_names

    @property
    def output_names(self) -> list[str]:
        return self._model.output_names

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name)
        """The ONNX bytes: encoded by aquant, or of the parsed proto once an attribute was read."""
        return self._model.SerializeToString() if self._proto is None else self._proto.SerializeToString()

    def _parsed(self) -> Any:
        if self._proto is None:
            import onnx

            self._proto = onnx.load_from_string(self._model.SerializeToString())
        return self._proto

    def __getattr__(self, name: str) -> Any:
        # Only for what is not found above: the ModelProto's fields and methods.
        if name.startswith("__") or name in ("_model", "_proto"):
            raise AttributeError(name)
        return getattr(self._parsed(), name)

    def __repr__(self) -> str:
        return f"<aquant lent ONNX model: inputs {self.input_names}, outputs {self.output_names}>"


class Port:
    """An input or output of :class:`CompiledModel` (OpenVINO's ``ConstOutput``): its index and name."""

    def __init__(self, index: int, name: str):
        self.index = index
        self.any_name = name
        self.names = {name}

    def get_index(self) -> int:
        return self.index

    def get_any_name(self) -> str:
        return self.any_name

    def get_names(self) -> set[str]:
        return set(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Port) and (other.index, other.any_name) == (self.index, self.any_name)

    def __hash__(self) -> int:
        return hash((self.index, self.any_name))

    def __repr__(self) -> str:
        return f"<Port {self.index}: {self.any_name!r}>"


Key = Union[Port, int, str]


class Results(Mapping):
    """A call's outputs as OpenVINO's ``OVDict`` gives them: keyed by :class:`Port`, and by index or name."""

    def __init__(self, ports: list[Port], arrays: list):
        self._ports = ports
        self._arrays = arrays

    def _index(self, key: Key) -> int:
        if isinstance(key, Port):
            return key.index
        if isinstance(key, int):
            return key
        for port in self._ports:
            if key in port.names:
                return port.index
        raise KeyError(key)

    def __getitem__(self, key: Key) -> Any:
        return self._arrays[self._index(key)]

    def __iter__(self) -> Iterator[Port]:
        return iter(self._ports)

    def __len__(self) -> int:
        return len(self._ports)

    def to_tuple(self) -> tuple:
        return tuple(self._arrays)

    def to_dict(self) -> dict:
        return dict(zip(self._ports, self._arrays))

    def names(self) -> tuple:
        return tuple(port.names for port in self._ports)


class CompiledModel:
    """The model as NNCF's OpenVINO backend lends it (an ``openvino.CompiledModel``, as far as validation
    functions use one): ``inputs``, ``outputs``, ``input(i)``, ``output(i)`` (by index or name), and a call on one
    array, a list/tuple in input order or a dict (by name or port) returning :class:`Results`."""

    def __init__(self, model: Any):
        self._model = model
        self.inputs = [Port(i, name) for i, name in enumerate(model.input_names)]
        self.outputs = [Port(i, name) for i, name in enumerate(model.output_names)]

    @staticmethod
    def _port(ports: list[Port], key: Key, what: str) -> Port:
        found = [p for p in ports if key in (p.index, p.any_name)] if not isinstance(key, Port) else [key]
        if not found:
            raise KeyError(f"the model has no {what} {key!r} (its {what}s: {[p.any_name for p in ports]})")
        return found[0]

    def input(self, key: Key = 0) -> Port:
        return self._port(self.inputs, key, "input")

    def output(self, key: Key = 0) -> Port:
        return self._port(self.outputs, key, "output")

    def __call__(self, inputs: Any) -> Results:
        if isinstance(inputs, dict):
            inputs = {k.any_name if isinstance(k, Port) else self.input(k).any_name: v for k, v in inputs.items()}
        return Results(self.outputs, self._model(inputs))

    def infer_new_request(self, inputs: Any) -> Results:
        """``CompiledModel.infer_new_request``: the same as a call."""
        return self(inputs)

    def __repr__(self) -> str:
        return f"<aquant lent compiled model: inputs {self.inputs}, outputs {self.outputs}>"


def lending(validation_fn: Callable, kind: str) -> Callable:
    """``validation_fn`` called with the lent model in the face of ``kind`` (``"openvino"``: NNCF's OpenVINO
    backend's, any other: its ONNX backend's)."""
    face = CompiledModel if kind == "openvino" else OnnxModel

    def lent(model: Any, data: Any) -> Any:
        return validation_fn(face(model), data)

    lent.__name__ = getattr(validation_fn, "__name__", "validation_fn")
    return lent
