"""A small Flask application (Debian's python3-flask).

    spindle --http-socket 127.0.0.1:9090 --wsgi-file examples/flask_app.py --callable app
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask\n"


@app.route("/hello/<name>")
def hello(name):
    return jsonify(greeting="hello %s" % name, args=request.args.to_dict())


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(), content_type=request.content_type)


@app.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json(force=True)
    return jsonify(received=data, total=sum(data.get("numbers", [])))


@app.route("/stream")
def stream():
    def gen():
        for i in range(4):
            yield "line %d\n" % i
    return app.response_class(gen(), mimetype="text/plain")


@app.route("/fail")
def fail():
    raise RuntimeError("flask view failed")


application = app
