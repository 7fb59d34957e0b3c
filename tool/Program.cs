using static TorchSharp.torch;
ResnetMnist.Native.NativeLoader.EnsureLoaded();
manual_seed(0);
var m = ResnetMnist.Model.Models.resnet18(1, 10);
var sd = m.state_dict();
System.Console.WriteLine($"{sd.Count} {m.parameters().Sum(p => p.numel())}");
foreach (var (k, v) in sd.Take(200)) System.Console.WriteLine($"{k} {string.Join("x", v.shape)} {v.to(ScalarType.Float64).sum().item<double>():R}");
var y = m.forward(randn(2,1,28,28));
System.Console.WriteLine(y.sum().item<float>());
