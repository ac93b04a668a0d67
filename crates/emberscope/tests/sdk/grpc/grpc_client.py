"""A real gRPC client (grpcio, HTTP/2 without TLS) against emberscope's port.

Usage: grpc_client.py ADDRESS PPROF_FILE OUT_DIR. Compiles the protos with grpc_tools, pushes
PPROF_FILE with PusherService/Push under a tenant, queries it back through QuerierService and
prints one JSON object with what came back (the Rust test asserts on it).
"""
import json
import os
import sys
import time

from grpc_tools import protoc
import grpc

address, pprof_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "../../../../.."))
includes = [
    here,
    os.path.join(root, "crates/api/proto"),
    os.path.join(root, "crates/formats/proto"),
]
for proto in ["types.proto", "push.proto", "querier.proto", "profile.proto",
              "querier_service.proto", "push_service.proto"]:
    args = ["protoc"] + ["-I" + i for i in includes] + [
        "--python_out=" + out, "--grpc_python_out=" + out, proto]
    if protoc.main(args) != 0:
        sys.exit("protoc failed on " + proto)
sys.path.insert(0, out)

import push_pb2, push_service_pb2_grpc, querier_pb2, querier_service_pb2_grpc, types_pb2  # noqa: E402

metadata = [("x-scope-orgid", "grpc-tenant")]
channel = grpc.insecure_channel(address)
pusher = push_service_pb2_grpc.PusherServiceStub(channel)
querier = querier_service_pb2_grpc.QuerierServiceStub(channel)

with open(pprof_file, "rb") as f:
    raw = f.read()
pusher.Push(push_pb2.PushRequest(series=[push_pb2.RawProfileSeries(
    labels=[types_pb2.LabelPair(name="__name__", value="process_cpu"),
            types_pb2.LabelPair(name="service_name", value="grpc-app")],
    samples=[push_pb2.RawSample(raw_profile=raw)])]), metadata=metadata)

now = int(time.time() * 1000)
cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
types = querier.ProfileTypes(querier_pb2.ProfileTypesRequest(), metadata=metadata)
graph = querier.SelectMergeStacktraces(querier_pb2.SelectMergeStacktracesRequest(
    profile_typeID=cpu, label_selector='{service_name="grpc-app"}', start=1, end=now,
    max_nodes=64), metadata=metadata)
profile = querier.SelectMergeProfile(querier_pb2.SelectMergeProfileRequest(
    profile_typeID=cpu, label_selector='{service_name="grpc-app"}', start=1, end=now),
    metadata=metadata)
result = {
    "profile_types": [t.ID for t in types.profile_types],
    "names": list(graph.flamegraph.names),
    "total": graph.flamegraph.total,
    "pprof_samples": len(profile.sample),
    "pprof_total": sum(s.value[0] for s in profile.sample),
}
try:
    querier.SelectMergeStacktraces(querier_pb2.SelectMergeStacktracesRequest(
        profile_typeID=cpu, label_selector="{}", start=0, end=0), metadata=metadata)
    result["error"] = None
except grpc.RpcError as e:
    result["error"] = [e.code().name, e.details()]
try:
    querier.ProfileTypes(querier_pb2.ProfileTypesRequest())
    result["no_tenant"] = None
except grpc.RpcError as e:
    result["no_tenant"] = [e.code().name, e.details()]
print(json.dumps(result))
