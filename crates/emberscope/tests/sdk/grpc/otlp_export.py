"""Exports an OTLP profiles request over gRPC (grpcio, h2c) to emberscope's HTTP port.

Usage: otlp_export.py ADDRESS REQUEST_FILE OUT_DIR. REQUEST_FILE holds a serialized
ExportProfilesServiceRequest. Prints JSON: {"code": <gRPC status name>, "details": <message>}.
"""
import json
import os
import sys

from grpc_tools import protoc
import grpc

address, request_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "../../../../.."))
include = os.path.join(root, "crates/formats/proto")
for proto in ["otlp/common.proto", "otlp/resource.proto", "otlp/profiles.proto",
              "otlp/profiles_service.proto"]:
    if protoc.main(["protoc", "-I" + include, "--python_out=" + out,
                    "--grpc_python_out=" + out, proto]) != 0:
        sys.exit("protoc failed on " + proto)
sys.path.insert(0, out)

from otlp import profiles_service_pb2, profiles_service_pb2_grpc  # noqa: E402

with open(request_file, "rb") as f:
    request = profiles_service_pb2.ExportProfilesServiceRequest.FromString(f.read())
stub = profiles_service_pb2_grpc.ProfilesServiceStub(grpc.insecure_channel(address))
try:
    stub.Export(request)
    print(json.dumps({"code": "OK", "details": ""}))
except grpc.RpcError as e:
    print(json.dumps({"code": e.code().name, "details": e.details()}))
