"""Drives the official OpenAI Python SDK against a codexpool balancer for the gateway tests.

Usage: sdk_client.py <base_url> <api_key> <scenario>
Prints one JSON object on standard output: what the SDK returned (or the error it raised).
"""
import base64
import json
import sys

import openai
from openai import OpenAI

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# A 1x1 PNG.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def streamed(client, **arguments):
    """A streamed chat: the text, the tool calls put together, the finish reason, the usage chunk."""
    text, calls, finish, usage, chunks = "", {}, None, None, 0
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **arguments):
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    return {"text": text, "calls": [calls[index] for index in sorted(calls)], "finish": finish, "usage": usage, "chunks": chunks}


def scenario(client, name):
    if name == "tool-round-trip":
        messages = [{"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": "What is the weather in Paris? Use get_weather."}]
        first = streamed(client, model="gpt-5.5", messages=messages, tools=[WEATHER_TOOL])
        call = first["calls"][0]
        messages.append({"role": "assistant", "content": None,
                         "tool_calls": [{"id": call["id"], "type": "function",
                                         "function": {"name": call["name"], "arguments": call["arguments"]}}]})
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"})
        second = streamed(client, model="gpt-5.5", messages=messages, tools=[WEATHER_TOOL])
        return {"first": first, "second": second}
    if name == "plain":
        completion = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "Say hello."}], user="sdk-test")
        return completion.model_dump()
    if name == "json-schema":
        completion = client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "Describe a city."}],
            response_format={"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
                "type": "object", "additionalProperties": False, "required": ["name", "population", "coastal"],
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}, "coastal": {"type": "boolean"}}}}})
        return {"content": completion.choices[0].message.content, "finish": completion.choices[0].finish_reason}
    if name == "image-input":
        completion = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PIXEL, "detail": "low"}}]}])
        return {"content": completion.choices[0].message.content}
    if name == "models":
        listed = [model.id for model in client.models.list()]
        one = client.models.retrieve("gpt-5.5").model_dump()
        try:
            client.models.retrieve("no-such-model")
            missing = None
        except openai.NotFoundError as error:
            missing = {"status": error.status_code, "code": error.code}
        return {"listed": listed, "one": one, "missing": missing}
    if name == "image-generate":
        result = client.images.generate(model="gpt-image-2", prompt="A lighthouse at dawn", n=2, size="1024x1024")
        return {"count": len(result.data), "first": base64.b64decode(result.data[0].b64_json).hex()[:16],
                "revised": result.data[0].revised_prompt, "usage": result.usage.model_dump() if result.usage else None}
    if name == "image-edit":
        png = base64.b64decode(PIXEL)
        result = client.images.edit(model="gpt-image-2", image=("photo.png", png, "image/png"), mask=("mask.png", png, "image/png"),
                                    prompt="Add a red boat")
        return {"count": len(result.data), "revised": result.data[0].revised_prompt}
    if name == "unsupported":
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], temperature=0.2)
        return {"unexpected": "no error"}
    raise SystemExit(f"unknown scenario {name}")


def main():
    base_url, api_key, name = sys.argv[1:4]
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    try:
        result = scenario(client, name)
    except openai.APIStatusError as error:
        result = {"error": {"status": error.status_code, "type": type(error).__name__, "code": error.code,
                            "param": getattr(error, "param", None), "message": error.message,
                            "retry_after": error.response.headers.get("retry-after")}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
