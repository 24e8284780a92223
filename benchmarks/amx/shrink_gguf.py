"""Copy a GGUF keeping only its first N blocks: a small real model (real tokenizer, real quantized
matmuls) that fits where a whole one does not, e.g. `smollm2-135m` cut to 2 blocks is 36 MB.

    python shrink_gguf.py SRC.gguf DST.gguf 2      (needs `pip install gguf==0.19.0`)
"""

import sys

import gguf


def shrink(src: str, dst: str, keep: int) -> None:
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == f"{arch}.block_count":
            writer.add_uint32(name, keep)
        elif field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), field.types[0])
    for tensor in reader.tensors:
        if tensor.name.startswith("blk.") and int(tensor.name.split(".")[1]) >= keep:
            continue
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    shrink(sys.argv[1], sys.argv[2], int(sys.argv[3]))
