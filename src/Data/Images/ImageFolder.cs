namespace ResnetMnist.Data.Images;

/// <summary>
/// One split of an image-folder dataset, indexed as torchvision 0.14's <c>datasets.ImageFolder</c> indexes it:
/// classes are the sub-folders of <see cref="Root"/> (symbolic links followed, hidden ones included), sorted by name;
/// each class's images are found by walking its folder recursively (<c>sorted(os.walk(..., followlinks=True))</c>:
/// folders in path order, files sorted within each) and keeping names that end, in any case, with one of
/// <see cref="Extensions"/>. Sorting is ordinal, as Python's. Only PNG and JPEG are decoded: a file with another of
/// torchvision's image extensions is refused when indexed, naming it.
/// </summary>
public sealed class ImageFolder
{
    /// <summary>torchvision's <c>IMG_EXTENSIONS</c>.</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];
    /// <summary>The extensions of the images this tool decodes (PNG, JPEG).</summary>
    public static readonly IReadOnlyList<string> Decoded = [".jpg", ".jpeg", ".png"];
    /// <summary>Most images a split may index.</summary>
    public const int MaxImages = 20_000_000;
    /// <summary>Most classes (sub-folders).</summary>
    public const int MaxClasses = 100_000;
    /// <summary>Deepest folder level walked below a class folder (a guard against symbolic-link cycles).</summary>
    public const int MaxDepth = 32;

    /// <summary>The split's folder (<c>ROOT/train</c> or <c>ROOT/val</c>).</summary>
    public string Root { get; }
    /// <summary>Class names, sorted; a label is an index into this list.</summary>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>Every image's path, in torchvision's order.</summary>
    public IReadOnlyList<string> Files { get; }
    /// <summary>Every image's label, in the order of <see cref="Files"/>.</summary>
    public IReadOnlyList<int> Labels { get; }

    ImageFolder(string root, IReadOnlyList<string> classes, IReadOnlyList<string> files, IReadOnlyList<int> labels) =>
        (Root, Classes, Files, Labels) = (root, classes, files, labels);

    /// <summary>The images at <paramref name="indices"/>, in that order, with the same root and classes.</summary>
    public ImageFolder Subset(long[] indices) =>
        new(Root, Classes, indices.Select(i => Files[checked((int)i)]).ToList(), indices.Select(i => Labels[checked((int)i)]).ToList());

    /// <summary>The class names under <paramref name="root"/> (torchvision's <c>find_classes</c>), refusing a missing or empty folder.</summary>
    public static IReadOnlyList<string> FindClasses(string root)
    {
        var kind = InputFiles.KindOf(root);
        if (kind != InputFiles.Kind.Directory)
            throw new DataException($"{root}: {(kind == InputFiles.Kind.Missing ? "folder not found" : "is not a folder")}; allowed: a folder with one sub-folder of images per class (torchvision's ImageFolder layout)");
        var classes = new DirectoryInfo(root).EnumerateDirectories().Select(d => d.Name)
            .Concat(new DirectoryInfo(root).EnumerateFiles().Where(f => f.LinkTarget is not null && Directory.Exists(f.FullName)).Select(f => f.Name))
            .Distinct().Order(StringComparer.Ordinal).Take(MaxClasses + 1).ToList();
        if (classes.Count == 0)
            throw new DataException($"{root}: holds no class folder; allowed: one sub-folder of images per class (ROOT/train/<class>/…, ROOT/val/<class>/…)");
        if (classes.Count > MaxClasses)
            throw new DataException($"{root}: more than {MaxClasses} class folders; allowed: at most {MaxClasses}");
        return classes;
    }

    /// <summary>
    /// Indexes <paramref name="root"/>. <paramref name="classes"/>: the training split's classes, which the
    /// validation split must also use (null: its own). <paramref name="progress"/> is told the number of images found so
    /// far, now and then, while a large folder is indexed.
    /// </summary>
    public static ImageFolder Index(string root, IReadOnlyList<string>? classes = null, Action<int>? progress = null)
    {
        var own = FindClasses(root);
        classes ??= own;
        var extra = own.Except(classes).ToList();
        if (extra.Count > 0)
            throw new DataException($"{Path.Combine(root, extra[0])}: class folder absent from the training split; allowed: the training split's classes ({Names(classes)})");
        var files = new List<string>();
        var labels = new List<int>();
        var empty = new List<string>();
        for (int c = 0; c < classes.Count; c++)
        {
            int before = files.Count;
            var dir = Path.Combine(root, classes[c]);
            if (Directory.Exists(dir))
                foreach (var folder in Walk(dir).Order(StringComparer.Ordinal))
                    foreach (var file in Directory.EnumerateFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal))
                    {
                        var ext = Extensions.FirstOrDefault(e => file!.EndsWith(e, StringComparison.OrdinalIgnoreCase));
                        if (ext is null) continue;
                        var path = Path.Combine(folder, file!);
                        if (!Decoded.Contains(ext))
                            throw new DataException($"{path}: a {ext} image, which this tool does not decode; allowed: PNG or JPEG ({string.Join(", ", Decoded)})");
                        if (files.Count >= MaxImages) throw new DataException($"{root}: more than {MaxImages} images; allowed: at most {MaxImages}");
                        files.Add(path);
                        labels.Add(c);
                        if (files.Count % 10_000 == 0) progress?.Invoke(files.Count);
                    }
            if (files.Count == before) empty.Add(classes[c]);
        }
        if (empty.Count > 0 && ReferenceEquals(classes, own))
            throw new DataException($"{root}: no image in class folder{(empty.Count > 1 ? "s" : "")} {Names(empty)}; allowed: files named *{string.Join(", *", Decoded)}");
        progress?.Invoke(files.Count);
        return new ImageFolder(root, classes, files, labels);
    }

    static string Names(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(10).Select(n => ResnetMnist.Core.Printable.Escape(n, 60))) + (names.Count > 10 ? $", … ({names.Count} in all)" : "");

    /// <summary><paramref name="dir"/> and every folder below it (symbolic links followed, at most <see cref="MaxDepth"/> levels).</summary>
    static List<string> Walk(string dir)
    {
        var found = new List<string>();
        var stack = new Stack<(string Dir, int Depth)>([(dir, 0)]);
        while (stack.Count > 0)
        {
            var (d, depth) = stack.Pop();
            found.Add(d);
            if (depth >= MaxDepth) continue;
            foreach (var sub in Directory.EnumerateDirectories(d)) stack.Push((sub, depth + 1));
        }
        return found;
    }
}
