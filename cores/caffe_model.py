"""Read Caffe ``.caffemodel`` files without Caffe: a small decoder of the protobuf wire format
for the messages that hold weights (NetParameter, LayerParameter / V1LayerParameter,
BlobProto, BlobShape), following caffe.proto's field numbers."""
import numpy as np
from cores.errors import SECError

# V1LayerParameter.LayerType values of the layers that carry weights
V1_TYPES = {4: "Convolution", 14: "InnerProduct", 39: "Deconvolution"}


class CaffeFormatError(SECError, ValueError):
    """Not a caffemodel, or one this reader does not understand; the message names it."""


def _varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CaffeFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yield (field number, wire type, value) of one message; length-delimited values are
    memoryviews, fixed32/fixed64 raw bytes."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise CaffeFormatError("unsupported wire type %d" % wire)
        if pos > len(buf):
            raise CaffeFormatError("truncated field %d" % number)
        yield number, wire, value


def _floats(wire, value, out):
    if wire == 2:                                     # packed
        out.append(np.frombuffer(value, dtype="<f4"))
    elif wire == 5:
        out.append(np.frombuffer(value, dtype="<f4"))
    else:
        raise CaffeFormatError("float data with wire type %d" % wire)


def parse_blob(buf):
    """BlobProto -> float32 array with its shape (``shape`` or legacy num/channels/h/w)."""
    data, legacy, shape = [], {}, None
    for number, wire, value in fields(buf):
        if number == 5:
            _floats(wire, value, data)
        elif number == 8:
            data.append(np.frombuffer(value, dtype="<f8").astype(np.float32))
        elif number in (1, 2, 3, 4) and wire == 0:
            legacy[number] = value
        elif number == 7:
            dims = []
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    pos = 0
                    while pos < len(v):
                        d, pos = _varint(v, pos)
                        dims.append(d)
                elif n == 1:
                    dims.append(v)
            shape = tuple(dims)
    array = np.concatenate(data) if data else np.zeros(0, np.float32)
    if shape is None:
        shape = tuple(legacy.get(k, 1) for k in (1, 2, 3, 4))
        if not legacy:
            shape = (array.size,)
    if int(np.prod(shape)) != array.size:
        raise CaffeFormatError("blob of shape %s holds %d values" % (shape, array.size))
    return array.reshape(shape)


def _text(value):
    return bytes(value).decode("utf-8")


def read_caffemodel(path):
    """[{name, type, bottom, top, blobs}] for every layer with blobs, in file order (new
    ``layer`` and legacy V1 ``layers`` formats)."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise CaffeFormatError("cannot read %s: %s" % (path, e)) from None
    layers = []
    try:
        for number, wire, value in fields(buf):
            if wire != 2 or number not in (2, 100):
                continue
            v1 = number == 2
            num = {"name": 4 if v1 else 1, "type": 5 if v1 else 2, "bottom": 2 if v1 else 3,
                   "top": 3 if v1 else 4, "blobs": 6 if v1 else 7}
            layer = {"name": None, "type": None, "bottom": [], "top": [], "blobs": []}
            for n, w, v in fields(value):
                if n == num["name"] and w == 2:
                    layer["name"] = _text(v)
                elif n == num["type"]:
                    layer["type"] = V1_TYPES.get(v, "V1:%d" % v) if v1 else _text(v)
                elif n == num["bottom"] and w == 2:
                    layer["bottom"].append(_text(v))
                elif n == num["top"] and w == 2:
                    layer["top"].append(_text(v))
                elif n == num["blobs"] and w == 2:
                    layer["blobs"].append(parse_blob(v))
            if layer["blobs"]:
                layers.append(layer)
    except CaffeFormatError as e:
        raise CaffeFormatError("%s: %s" % (path, e)) from None
    if not layers:
        raise CaffeFormatError("%s holds no layers with weights; is it a .caffemodel?" % path)
    return layers


def prototxt_layers(path):
    """(name, type) of each layer in a prototxt (text format), enough to check a model."""
    import re
    with open(path) as f:
        text = f.read()
    out = []
    for block in re.split(r"\blayers?\s*\{", text)[1:]:
        name = re.search(r'\bname:\s*"([^"]+)"', block)
        kind = re.search(r'\btype:\s*"?([A-Za-z_0-9]+)"?', block)
        if name:
            out.append((name.group(1), kind.group(1) if kind else None))
    return out


# ---------------------------------------------------------------- writing (tests, tools)
def _key(number, wire):
    return _encode_varint((number << 3) | wire)


def _encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number, payload):
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def encode_blob(array, legacy=False):
    array = np.asarray(array, dtype="<f4")
    if legacy:                                        # num, channels, height, width
        dims = [1] * (4 - array.ndim) + list(array.shape)
        head = b"".join(_key(n, 0) + _encode_varint(d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        shape = b"".join(_encode_varint(d) for d in array.shape)
        head = _length_delimited(7, _length_delimited(1, shape))
    return head + _length_delimited(5, array.tobytes())


def encode_caffemodel(layers, v1=False):
    """Bytes of a NetParameter holding ``layers`` ({name, type, bottom, top, blobs})."""
    v1_codes = {v: k for k, v in V1_TYPES.items()}
    out = bytearray(_length_delimited(1, b"synthetic"))
    for layer in layers:
        if v1:
            body = _length_delimited(4, layer["name"].encode())
            body += _key(5, 0) + _encode_varint(v1_codes[layer["type"]])
            body += b"".join(_length_delimited(2, b.encode()) for b in layer.get("bottom", []))
            body += b"".join(_length_delimited(3, t.encode()) for t in layer.get("top", []))
            body += b"".join(_length_delimited(6, encode_blob(b, legacy=True))
                             for b in layer["blobs"])
            out += _length_delimited(2, body)
        else:
            body = _length_delimited(1, layer["name"].encode())
            body += _length_delimited(2, layer["type"].encode())
            body += b"".join(_length_delimited(3, b.encode()) for b in layer.get("bottom", []))
            body += b"".join(_length_delimited(4, t.encode()) for t in layer.get("top", []))
            body += b"".join(_length_delimited(7, encode_blob(b)) for b in layer["blobs"])
            out += _length_delimited(100, body)
    return bytes(out)
