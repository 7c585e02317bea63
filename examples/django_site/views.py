import json

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse


def index(request):
    return HttpResponse("Hello from Django\n", content_type="text/plain")


def item(request, item_id):
    return JsonResponse({"item": item_id, "q": request.GET.get("q"),
                         "method": request.method, "path": request.path})


def form(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    return JsonResponse({"form": request.POST.dict(), "host": request.get_host()})


def json_echo(request):
    data = json.loads(request.body)
    return JsonResponse({"received": data, "length": len(request.body)})


def stream(request):
    return StreamingHttpResponse((b"part %d\n" % i for i in range(3)), content_type="text/plain")
